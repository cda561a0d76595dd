"""Parallel branches as a structure: find them, score them, remove them physically.

A *branch module* is any module whose output is a channel concat (Inception) or a sum of
parallel paths (found from one traced forward pass, see
:mod:`prunekit.structures._branch_trace`). Each of its removable paths is one unit.

Removing a branch deletes its layers — its head module becomes an
:class:`~prunekit.structures._branch_modules.EmptyBranch` (a 0-channel tensor for a
concat, a zero for a sum), its other layers :class:`PassThrough` — and, for a concat,
shrinks the consumers' input channels with :func:`prunekit.surgery.remove_channels` (the
consumer slices come from :func:`prunekit.graph.build_groups`). The last branch of a
module is never removed; the cut is all or nothing.

For proximal training each branch module is one :class:`~prunekit.graph.Group` whose
"channels" are its branches, the members of branch ``b`` being all its parameters, so
``ProximalGroupLasso`` applies ``θ_b ← (1 − τ / ‖θ_b‖₂)₊ θ_b`` with ``τ = lr·λ·w_b`` and
drives whole branches to exactly zero (penalty ``λ Σ_b w_b ‖θ_b‖₂``). A zero branch
outputs zeros, so removing it does not change the model's outputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.graph import Group, GroupSet, Member, build_groups, iter_tensors, record
from prunekit.inputs import call_model, inference_mode_of
from prunekit.structures._branch_fit import fit_rules, head_sizes
from prunekit.structures._branch_modules import EmptyBranch, PassThrough
from prunekit.structures._branch_trace import (
    Branch,
    BranchModule,
    _module_outs,
    _terms,
    find_branch_modules,
    iter_branches,
    sums_and_concats,
)
from prunekit.structures.plancheck import check_header, check_surgery
from prunekit.structures.registry import Structure, register
from prunekit.surgery import (
    Plan,
    SurgeryError,
    apply_plan,
    forward_check,
    remove_channels,
    transaction,
)
from prunekit.surgery import validate as v
from prunekit.surgery.validate import PlanError

PLAN_VERSION = 1
MAX_SIZE, MAX_WINDOW = 1 << 20, 64  # spatial sizes and [k, s, p] of an empty branch
SCORES = ("output_share", "param_norm", "l2")


@dataclass
class BranchPlan:
    """A branch removal as plain data (JSON), replayable with :func:`apply_branch_plan`.

    Attributes
    ----------
    removed : dict
        ``{branch module: [branch names removed]}`` — the report.
    replacements : list of dict
        ``{"path", "kind": "empty" | "pass", "mode", "target", "rule"}`` per replaced module.
    surgery : dict
        The consumers' channel cuts, a :class:`prunekit.surgery.Plan` as a dict.
    """

    removed: dict[str, list[str]]
    replacements: list[dict[str, Any]]
    surgery: dict[str, Any]
    version: int = PLAN_VERSION
    structure: str = "branch"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> BranchPlan:
        """Inverse of :meth:`to_dict`; :class:`~prunekit.surgery.PlanError` (a ValueError)
        naming the field on a foreign, newer or malformed plan."""
        d = check_header(data, "branch", PLAN_VERSION, ("removed", "replacements", "surgery"))
        replacements = v.items(d["replacements"], "replacements", _replacement)
        paths = [r["path"] for r in replacements]
        if len(set(paths)) != len(paths):
            raise PlanError("a module is replaced twice", field="replacements")
        return cls(v.mapping(d["removed"], "removed", v.strings), replacements,
                   check_surgery(d["surgery"], "surgery"), d["version"])

    @classmethod
    def from_json(cls, text: str) -> BranchPlan:
        return cls.from_dict(json.loads(text))

    @property
    def n_removed(self) -> int:
        return sum(len(v) for v in self.removed.values())


def _replacement(data: Any, at: str) -> dict[str, Any]:
    """``{"path", "kind": "pass"}`` or ``{"path", "kind": "empty", "mode", "target",
    "rule"}`` with small spatial sizes and windows."""
    kind = v.string(data.get("kind") if isinstance(data, dict) else data, f"{at}.kind",
                    ("empty", "pass"))
    extra = ("mode", "target", "rule") if kind == "empty" else ()
    d = v.record(data, at, ("path", "kind", *extra))
    path = v.string(d["path"], f"{at}.path")
    if not path:
        raise PlanError("the model itself cannot be replaced", field=f"{at}.path")
    if kind == "pass":
        return {"path": path, "kind": kind}
    target = v.items(d["target"], f"{at}.target", lambda x, f: v.integer(x, f, 0, MAX_SIZE),
                     max_len=8)
    rule = None if d["rule"] is None else v.items(d["rule"], f"{at}.rule", _window, max_len=8)
    if rule is not None and len(rule) != len(target):
        raise PlanError(f"one [k, s, p] per spatial dim of the target ({len(target)})",
                        field=f"{at}.rule")
    return {"path": path, "kind": kind, "mode": v.string(d["mode"], f"{at}.mode", ("cat", "sum")),
            "target": target, "rule": rule}


def _window(data: Any, at: str) -> list[int]:
    window = v.items(data, at, v.integer, max_len=3)
    if len(window) != 3:
        raise PlanError("expected [kernel, stride, padding]", field=at)
    k, s, p = window
    return [v.integer(k, f"{at}[0]", 1, MAX_WINDOW), v.integer(s, f"{at}[1]", 1, MAX_WINDOW),
            v.integer(p, f"{at}[2]", 0, MAX_WINDOW)]


@dataclass
class BranchResult:
    """What :func:`prune_branches` did."""

    model: nn.Module
    plan: BranchPlan
    scores: dict[str, float] = field(default_factory=dict)
    modules: list[BranchModule] = field(default_factory=list)

    @property
    def removed(self) -> dict[str, list[str]]:
        """``{branch module: [removed branch names]}``."""
        return self.plan.removed

    def report(self) -> str:
        """One line per branch module: which branches went, how many stay."""
        lines = []
        for bm in self.modules:
            gone = self.plan.removed.get(bm.name, [])
            total = len(bm.removable)
            names = ", ".join(n.rsplit(".", 1)[-1] for n in gone) or "none"
            lines.append(f"{bm.name} ({bm.kind}): removed {names}; kept {total - len(gone)}"
                         f"/{total}")
        return "\n".join(lines)


# ---------------------------------------------------------------- find / groups / score
def find_branches(model: nn.Module, example_inputs: Any) -> list[Branch]:
    """The removable branches of ``model`` (empty list when it has none)."""
    return list(iter_branches(find_branch_modules(model, example_inputs)))


def _modules_or_error(model: nn.Module, example_inputs: Any) -> list[BranchModule]:
    modules = find_branch_modules(model, example_inputs)
    if not modules:
        raise ValueError(f"model: {type(model).__name__} has no parallel branches (no module "
                         "whose output is a channel concat or sum of >= 2 removable paths)")
    return modules


def branch_groups(model: nn.Module, example_inputs: Any) -> list[Group]:
    """One :class:`Group` per branch module (id ``"branch:<module>"``), one channel per
    removable branch, members every parameter of the branch along dim 0.

    Raises ValueError when the model has no branch modules.
    """
    params = dict(model.named_parameters())
    groups = []
    for bm in _modules_or_error(model, example_inputs):
        units = bm.removable
        members = []
        for k, b in enumerate(units):
            for p in b.params:
                if params[p].ndim == 0:
                    continue
                index = [[] for _ in units]
                index[k] = list(range(params[p].shape[0]))
                members.append(Member(p, 0, index))
        groups.append(Group(f"branch:{bm.name}", len(units), members, [(bm.name, 1)]))
    return groups


def score_branches(model: nn.Module, branches: Iterable[Branch] | None, example_inputs: Any,
                   *, method: str = "output_share",
                   batches: Iterable[Any] | None = None) -> dict[str, float]:
    """Scores per branch name, higher means keep.

    * ``"output_share"``: ``‖y_b‖² / Σ_t ‖y_t‖²``, the branch's share of its module's
      output energy (concat or sum terms), averaged over ``batches`` (default: the
      example inputs);
    * ``"param_norm"``: ``‖θ_b‖₂ / √n_b`` (RMS of the branch's parameters);
    * ``"l2"``: ``‖θ_b‖₂``.
    """
    if method not in SCORES:
        raise ValueError(f"method must be one of {SCORES}, got {method!r}")
    units = list(branches) if branches is not None else find_branches(model, example_inputs)
    params = dict(model.named_parameters())
    if method != "output_share":
        out = {}
        for b in units:
            sq = sum(float(params[p].detach().double().pow(2).sum()) for p in b.params)
            n = sum(params[p].numel() for p in b.params)
            out[b.name] = sq ** 0.5 / (n ** 0.5 if method == "param_norm" else 1.0)
        return out
    data = list(batches) if batches is not None else [example_inputs]
    wanted = {b.module for b in units}
    totals = {b.name: 0.0 for b in units}
    for batch in data:
        shares = _output_shares(model, batch, wanted)
        for b in units:
            totals[b.name] += shares.get((b.module, b.position), 0.0) / len(data)
    return totals


def _output_shares(model: nn.Module, batch: Any, wanted: set[str]) -> dict[tuple, float]:
    log = record(model, batch)
    module_outs = _module_outs(log)
    table = sums_and_concats(log)
    shares = {}
    for name in wanted:
        parsed = _terms(table, log.outputs(name)[0], module_outs)
        if parsed is None:
            continue
        energy = [float(t.detach().double().pow(2).sum()) for t in parsed[1]]
        total = sum(energy) or 1.0
        shares.update({(name, k): e / total for k, e in enumerate(energy)})
    return shares


def zero_branches(model: nn.Module, branches: Iterable[Branch]) -> list[str]:
    """Names of the branches whose parameters are all exactly zero."""
    params = dict(model.named_parameters())
    return [b.name for b in branches
            if all(not bool(params[p].detach().any()) for p in b.params)]


# ---------------------------------------------------------------- removal
def remove_branches(model: nn.Module, names: Iterable[str], example_inputs: Any) -> BranchPlan:
    """Physically delete the named branches, in place, all or nothing.

    Parameters
    ----------
    model : nn.Module
    names : iterable of str
        Branch names from :func:`find_branches` (e.g. ``"inception3a.branch2"``).
    example_inputs
        For tracing and the forward check.

    Raises
    ------
    ValueError
        Unknown or duplicate names, a module that would lose all its removable branches,
        a model without branches (the model is untouched).
    SurgeryError
        The cut or the forward check failed; the model was restored bit-identically.
    """
    if isinstance(names, str):
        raise TypeError("names must be an iterable of branch names, not one string")
    names = list(names)
    modules = _modules_or_error(model, example_inputs)
    chosen = _validate(names, modules)
    with inference_mode_of(model):
        expected = [tuple(t.shape) for t in iter_tensors(call_model(model, example_inputs))]
    syn = _consumer_group(model, example_inputs, chosen, modules)
    probes = _probe_heads(model, chosen, modules)
    try:
        with transaction(model):
            swaps = _swap(model, chosen, modules)
            _fit(model, swaps, probes, modules)
            if syn.size > 1:
                gs = GroupSet([syn], [], expected)
                # the swapped model only runs after the cut: shapes are checked, values
                # are the fitted replacement's by design (no zeroed original to compare)
                plan = remove_channels(model, gs, {syn.id: list(range(syn.size - 1))},
                                       example_inputs, values=False)
            else:
                plan = Plan()
                forward_check(model, example_inputs, expected)
    except SurgeryError as err:
        raise SurgeryError(f"removing branches {names} failed: {err}; the model was "
                           "restored", err.module, err.op) from err
    removed: dict[str, list[str]] = {}
    for b in chosen:
        removed.setdefault(b.module, []).append(b.name)
    return BranchPlan(removed, _replacements(model, swaps), plan.to_dict())


def _validate(names: list[str], modules: list[BranchModule]) -> list[Branch]:
    if not all(isinstance(n, str) for n in names):
        raise TypeError(f"names must be strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"names: duplicates in {names}")
    known = {b.name: b for b in iter_branches(modules)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"names: {unknown} are not removable branches; removable: "
                         f"{sorted(known)}")
    for bm in modules:
        k = sum(1 for n in names if known[n].module == bm.name)
        if k and k >= len(bm.removable):
            raise ValueError(f"names: asked to remove all {k} removable branches of "
                             f"{bm.name!r}; at least one must stay")
    return [known[n] for n in names]


def _consumer_group(model: nn.Module, example_inputs: Any, chosen: list[Branch],
                    modules: list[BranchModule]) -> Group:
    """One synthetic group whose channel ``k`` is the k-th removed concat channel, its
    members the consumers' slices of it (plus one empty channel, so that surgery's
    "keep one channel" rule holds).

    A graph channel belongs to branch ``b`` when ``b`` is the only branch of its module
    with a parameter in it (input channels are read by several branches); what is cut
    are its members in modules that run after the branch module (the
    consumers, in execution order), except those deleted with another removed branch.
    """
    cats = [b for b in chosen if b.channels and _kind(modules, b) == "cat"]
    if not cats:
        return Group("branch-consumers", 1, [])
    gs = build_groups(model, example_inputs)
    dead = _owners({p for b in chosen for p in b.params})
    owner = {p: b for bm in modules for b in bm.branches for p in b.params}
    found: list[list[tuple[str, int, list[int]]]] = []
    for b in cats:
        after = next(bm.downstream for bm in modules if bm.name == b.module)
        mine = 0
        for g in gs.groups:
            own = [m for m in g.members if m.param in b.params]
            for c in range(g.size) if own else ():
                users = {owner[m.param].name for m in g.members if m.index[c] and
                         m.param in owner and owner[m.param].module == b.module}
                if users != {b.name}:
                    continue  # not b's channel, or an input channel several branches read
                mine += 1
                found.append([(m.param, m.dim, list(m.index[c])) for m in g.members
                              if m.index[c] and m.param.rsplit(".", 1)[0] in after
                              and m.param.rsplit(".", 1)[0] not in dead])
        if mine < b.channels:
            raise ValueError(f"names: only {mine} of the {b.channels} output channels of "
                             f"{b.name!r} are traceable to their consumers (a barrier?); the "
                             "branch cannot be cut")
    slices: dict[tuple[str, int], list[list[int]]] = {}
    for k, chan in enumerate(found):
        for param, dim, idx in chan:
            if (param, dim) not in slices:
                slices[(param, dim)] = [[] for _ in range(len(found) + 1)]
            slices[(param, dim)][k] = idx
    members = [Member(p, d, idx) for (p, d), idx in slices.items()]
    return Group("branch-consumers", len(found) + 1 if members else 1, members)


def _owners(params: set[str]) -> set[str]:
    """Modules holding ``params`` (their buffers go with them)."""
    return {p.rsplit(".", 1)[0] for p in params}


def _kind(modules: list[BranchModule], b: Branch) -> str:
    return next(bm.kind for bm in modules if bm.name == b.module)


def _swap(model: nn.Module, chosen: list[Branch],
          modules: list[BranchModule]) -> list[tuple[str, nn.Module, nn.Module]]:
    """Replace heads by EmptyBranch and private non-heads by PassThrough; (path, old, new)."""
    swaps = []
    for b in chosen:
        bm = next(m for m in modules if m.name == b.module)
        others = {c for o in bm.branches if o.name != b.name for c in o.children}
        for child in b.children:
            if child in b.heads:
                spatial = bm.head_shapes[child][2:] if bm.kind == "cat" else ()
                new: nn.Module = EmptyBranch(bm.kind, spatial)
            elif child not in others:
                new = PassThrough()
            else:
                continue
            swaps.append((child, model.get_submodule(child), new))
    for path, _old, new in swaps:
        _set(model, path, new)
    return swaps


def _probe_heads(model: nn.Module, chosen: list[Branch], modules: list[BranchModule]) -> dict:
    """Output sizes of the chosen concat heads at a few input sizes (see ``_branch_fit``)."""
    out = {}
    for bm in modules:
        heads = {h: model.get_submodule(h) for b in chosen if b.module == bm.name
                 for h in b.heads}
        if heads and bm.kind == "cat" and len(bm.in_shape) > 2:
            out[bm.name] = head_sizes(model.get_submodule(bm.name), heads, bm.in_shape)
    return out


def _fit(model: nn.Module, swaps: list, probes: dict, modules: list[BranchModule]) -> None:
    for bm in modules:
        if bm.name in probes:
            prefix = f"{bm.name}." if bm.name else ""
            empties = {p: new for p, _old, new in swaps
                       if isinstance(new, EmptyBranch) and p.startswith(prefix)}
            fit_rules(model.get_submodule(bm.name), empties, bm.in_shape, probes[bm.name])


def _set(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, key = path.rpartition(".")
    model.get_submodule(parent)._modules[key] = module


def _replacements(model: nn.Module, swaps: list) -> list[dict[str, Any]]:
    out = []
    for path, _old, new in swaps:
        if isinstance(new, EmptyBranch):
            out.append({"path": path, "kind": "empty", "mode": new.mode,
                        "target": list(new.target), "rule": new.rule})
        else:
            out.append({"path": path, "kind": "pass"})
    return out


def apply_branch_plan(model: nn.Module, plan: BranchPlan | dict,
                      example_inputs: Any = None) -> BranchPlan:
    """Replay a plan on a freshly built model of the original architecture (all or
    nothing; with ``example_inputs`` the result is forward-checked)."""
    if isinstance(plan, dict):
        plan = BranchPlan.from_dict(plan)
    names = {n for n, _ in model.named_modules()}
    missing = [r["path"] for r in plan.replacements if r["path"] not in names]
    if missing:
        raise PlanError(f"modules {missing[:5]} do not exist in the model",
                        field="replacements")
    with transaction(model):
        for r in plan.replacements:
            new = (EmptyBranch(r["mode"], tuple(r["target"]), r["rule"])
                   if r["kind"] == "empty" else PassThrough())
            _set(model, r["path"], new)
        apply_plan(model, Plan.from_dict(plan.surgery), example_inputs)
    return plan


# ---------------------------------------------------------------- one call
def prune_branches(model: nn.Module, example_inputs: Any, *, n_branches: int | None = None,
                   ratio: float | None = None, zero_only: bool = False,
                   method: str = "output_share",
                   batches: Iterable[Any] | None = None,
                   restore: Mapping[str, torch.Tensor] | None = None) -> BranchResult:
    """Find, score and remove branches in one call (in place, all or nothing).

    Give exactly one of ``n_branches`` (how many), ``ratio`` (fraction in [0, 1) of the
    removable branches) or ``zero_only=True`` (every branch whose parameters are exactly
    zero, e.g. after proximal group-lasso training). The lowest-scored branches go first;
    a module's last removable branch always stays.

    ``restore`` (with ``zero_only``): a state_dict of the same architecture (the weights
    before proximal training). The branches are chosen on the current, trained weights,
    then the model is loaded with ``restore`` and those branches are removed: the survivors
    restart from the dense weights instead of the ones the penalty shrank (debiasing: refit
    on the support the group lasso selected; on a 4×4-branch Inception CNN this turned a
    17-72 pt loss into -0.3 pt, docs/structures.md). On any failure the trained weights are
    put back.
    """
    if restore is not None and not zero_only:
        raise ValueError("restore= goes with zero_only=True (the prox chooses the branches, "
                         "the restored weights survive)")
    trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if restore is not None and set(restore) != set(trained):
        raise ValueError("restore must be a state_dict of the same architecture: "
                         f"{sorted(set(restore) ^ set(trained))[:5]} differ")
    modules = _modules_or_error(model, example_inputs)
    units = list(iter_branches(modules))
    if sum(x is not None and x is not False for x in (n_branches, ratio, zero_only or None)) != 1:
        raise ValueError("give exactly one of n_branches, ratio and zero_only=True")
    scores = score_branches(model, units, example_inputs, method=method, batches=batches)
    if zero_only:
        zeros = set(zero_branches(model, units))
        pick = _select([b for b in units if b.name in zeros], scores, len(zeros), modules,
                       strict=False)
    else:
        pick = _select(units, scores, _count(n_branches, ratio, len(units)), modules)
    if restore is not None:
        model.load_state_dict(restore)
    try:
        plan = (remove_branches(model, pick, example_inputs) if pick else
                BranchPlan({}, [], Plan(groups={}).to_dict()))  # nothing cut: still replays
    except Exception:
        model.load_state_dict(trained)  # remove_branches restored the modules; the weights too
        raise
    return BranchResult(model, plan, scores, modules)


def _count(n: int | None, ratio: float | None, available: int) -> int:
    if ratio is not None:
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        n = round(ratio * available)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n_branches must be a non-negative int, got {n!r}")
    return n


def _select(candidates: list[Branch], scores: dict[str, float], n: int,
            modules: list[BranchModule], strict: bool = True) -> list[str]:
    left = {bm.name: len(bm.removable) for bm in modules}
    pick = []
    for b in sorted(candidates, key=lambda b: scores[b.name]):
        if len(pick) == n:
            break
        if left[b.module] > 1:
            left[b.module] -= 1
            pick.append(b.name)
    if strict and len(pick) < n:
        raise ValueError(f"n_branches: asked for {n} branches but only {len(pick)} can go "
                         "(every module keeps one)")
    return pick


BRANCH = register(Structure("branch", find=find_branches, score=score_branches,
                            remove=remove_branches, prune=prune_branches,
                            apply_plan=apply_branch_plan, groups=branch_groups))

__all__ = ["BRANCH", "Branch", "BranchModule", "BranchPlan", "BranchResult",
           "apply_branch_plan", "branch_groups", "find_branch_modules", "find_branches",
           "prune_branches", "remove_branches", "score_branches", "zero_branches",
           "EmptyBranch", "PassThrough"]
