"""Find parallel branches from one traced forward pass (not from class names).

A module ``M`` is a *branch module* when its output is produced directly by a
``torch.cat`` along the channel dimension (Inception) or by a sum ``a + b + ...``
(multi-path blocks), and at least two of the concatenated / summed terms are
*removable branches*. A term's branch is found in the autograd graph: walking back
from the term to ``M``'s input collects the parameters and the direct children of
``M`` it runs through. A branch is removable when

1. it holds parameters, all of them in direct children of ``M`` (a functional use of
   ``M``'s own parameters, or of anything outside ``M``, cannot be deleted cleanly);
2. none of its parameter-holding children is shared with another branch (a DenseNet
   block, where every later output depends on every earlier layer, is therefore no
   branch module: its units are connections, see :mod:`prunekit.structures.connection`);
3. its *heads* — the children whose output reaches the term without passing another
   child — were each called once.

Parameter-free children called more than once (a shared ``self.relu``) are transparent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from prunekit.graph.oplog import OpLog, first_tensor, record

_ADDS = {torch.add, torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__}
_SPATIAL_NDIMS = (2, 4, 5)  # (N, C), (N, C, H, W), (N, C, D, H, W)


@dataclass(frozen=True)
class Branch:
    """One parallel path of a branch module.

    Attributes
    ----------
    name : str
        ``"<module>.<label>"``, e.g. ``"inception3a.branch2"`` or ``"Mixed_5b.branch5x5"``
        (the label is the common prefix of the branch's children, or its only child).
    module : str
        Qualified name of the branch module.
    position : int
        Position of the branch's term in the concat / sum.
    children : tuple of str
        Qualified names of the children of ``module`` the branch runs through.
    heads : tuple of str
        Children whose output is (part of) the term; they are replaced on removal.
    params : tuple of str
        Qualified parameter names of the branch (what removal deletes).
    channels : int
        Channels the branch contributes to a concat (its term's size along dim 1).
    offset : int
        First channel of the branch in the module's output (concat; 0 for a sum).
    removable : bool
    reason : str
        Why the branch is not removable (empty when it is).
    """

    name: str
    module: str
    position: int
    children: tuple[str, ...]
    heads: tuple[str, ...]
    params: tuple[str, ...]
    channels: int
    offset: int
    removable: bool
    reason: str = ""


@dataclass
class BranchModule:
    """A module whose output is a concat (``kind="cat"``) or sum (``"sum"``) of branches."""

    name: str
    kind: str
    branches: list[Branch]
    out_shape: tuple[int, ...]
    head_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # modules first called after this one returned (where concat consumers live)
    downstream: frozenset[str] = frozenset()
    in_shape: tuple[int, ...] = ()

    @property
    def removable(self) -> list[Branch]:
        """The branches that can be removed."""
        return [b for b in self.branches if b.removable]


def sums_and_concats(log: OpLog) -> dict[int, tuple[str, list[torch.Tensor]]]:
    """``{id(output): ("cat", inputs) | ("sum", [a, b])}`` for every channel concat
    (dim 1 of an (N, C, ...) tensor) and out-of-place two-term addition of the pass."""
    out: dict[int, tuple[str, list[torch.Tensor]]] = {}
    for rec in log.ops:
        func, args, kwargs, res = rec.func, rec.args, rec.kwargs, rec.out
        if func in (torch.cat, torch.concat) and isinstance(res, torch.Tensor):
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            if res.ndim in _SPATIAL_NDIMS and dim in (1, 1 - res.ndim):
                out[id(res)] = ("cat", list(args[0]))
        elif func in _ADDS and len(args) == 2 and "alpha" not in kwargs:
            a, b = args
            if all(isinstance(t, torch.Tensor) and t.shape == res.shape for t in (a, b, res)):
                out[id(res)] = ("sum", [a, b])
    return out


def run_logged(model: nn.Module, example_inputs: Any) -> OpLog:
    """One recorded pass with autograd on (:func:`prunekit.graph.record`, ``grad=True``)."""
    return record(model, example_inputs, grad=True)


def _module_outs(log: OpLog) -> set[int]:
    return {id(t) for name in log.calls for t in log.outputs(name)}


def _terms(table: dict, out: torch.Tensor, module_outs: set[int]) -> tuple[str, list] | None:
    entry = table.get(id(out))
    if entry is None:
        return None
    kind, terms = entry
    if kind == "cat":
        return kind, terms
    flat: list[torch.Tensor] = []
    stack = list(reversed(terms))
    while stack:  # (a + b) + c -> [a, b, c]; a module's own sum output stays one term
        t = stack.pop()
        sub = table.get(id(t))
        if sub is not None and sub[0] == "sum" and id(t) not in module_outs:
            stack.extend(reversed(sub[1]))
        else:
            flat.append(t)
    return kind, flat


@dataclass
class _Walk:
    params: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    heads: set[str] = field(default_factory=set)
    foreign: set[str] = field(default_factory=set)


def _input(log: OpLog, module: str) -> torch.Tensor | None:
    """The first tensor among the positional arguments of ``module``'s first call."""
    call = log.first_call(module)
    return first_tensor(call.args) if call is not None else None


def _walk(term: torch.Tensor, stop: Any, child_nodes: dict[Any, list[str]],
          param_of: dict[int, str]) -> _Walk:
    """Parameters and children reached from ``term`` back to ``stop`` (M's input)."""
    res = _Walk()
    if term.grad_fn is None:
        return res
    seen: set[tuple[int, bool]] = set()
    stack: list[tuple[Any, bool]] = [(term.grad_fn, False)]
    while stack:
        node, passed = stack.pop()
        if node is None or node is stop or (id(node), passed) in seen:
            continue
        seen.add((id(node), passed))
        kids = child_nodes.get(node)
        if kids:
            res.children.update(kids)
            if not passed:
                res.heads.update(kids)
            passed = True
        var = getattr(node, "variable", None)
        if var is not None:
            name = param_of.get(id(var))
            if name is not None:
                res.params.add(name)
        stack.extend((nxt, passed) for nxt, _ in node.next_functions)
    return res


def _label(module: str, kids: list[str], position: int, taken: set[str]) -> str:
    keys = [k[len(module) + 1:] if module else k for k in kids]
    if len(keys) == 1:
        label = keys[0]
    else:
        label = os.path.commonprefix(keys).rstrip("_.") if keys else ""
    if not label or label in taken:
        label = f"branch{position}"
    taken.add(label)
    return f"{module}.{label}" if module else label


def _owner_child(param: str, module: str, children: set[str]) -> str | None:
    for c in children:
        if param.startswith(c + "."):
            return c
    return None


def _callable_children(mod: nn.Module, name: str, log: OpLog) -> list[str]:
    """Direct children of ``mod`` that were called; an uncalled container (ModuleList,
    ModuleDict) is replaced by its own callable children, recursively."""
    out = []
    for key, child in mod._modules.items():
        path = f"{name}.{key}" if name else key
        if log.n_calls(path) or child is None:
            out.append(path)
        else:
            out.extend(_callable_children(child, path, log))
    return out


def _analyse(model: nn.Module, mname: str, log: OpLog, out: torch.Tensor, kind: str,
             terms: list[torch.Tensor], param_of: dict[int, str]) -> BranchModule:
    units = _callable_children(model.get_submodule(mname), mname, log)
    children = set(units)
    holds = {c for c in children if any(True for _ in model.get_submodule(c).parameters())}
    transparent = {c for c in children if c not in holds and log.n_calls(c) > 1}
    child_nodes: dict[Any, list[str]] = {}
    for c in children - transparent:
        for t in log.outputs(c):
            if t.grad_fn is not None:
                child_nodes.setdefault(t.grad_fn, []).append(c)
    x = _input(log, mname)
    stop = x.grad_fn if x is not None else None
    walks = [_walk(t, stop, child_nodes, param_of) for t in terms]
    use: dict[str, int] = {}
    for w in walks:
        for c in w.children & holds:
            use[c] = use.get(c, 0) + 1
    branches, taken, offset = [], set(), 0
    prefix = mname + "." if mname else ""
    for pos, (t, w) in enumerate(zip(terms, walks, strict=True)):
        reason = _reason(w, holds, use, log, prefix, children)
        order = [c for c in units if c in w.children]
        label_kids = [c for c in order if c in holds] or order
        name = _label(mname, label_kids, pos, taken)
        channels = int(t.shape[1]) if kind == "cat" else 0
        branches.append(Branch(name, mname, pos, tuple(order), tuple(sorted(w.heads)),
                               tuple(sorted(w.params)), channels, offset, not reason, reason))
        offset += channels
    head_shapes = {h: tuple(log.outputs(h)[0].shape) for b in branches for h in b.heads}
    after = log.started_after(mname)
    in_shape = tuple(x.shape) if x is not None else ()
    return BranchModule(mname, kind, branches, tuple(out.shape), head_shapes, after, in_shape)


def _reason(w: _Walk, holds: set[str], use: dict[str, int], log: OpLog, prefix: str,
            children: set[str]) -> str:
    if not w.params:
        return "no parameters"
    outside = [p for p in w.params if not p.startswith(prefix) or
               _owner_child(p, prefix, children) is None]
    if outside:
        return f"uses parameters outside its children: {sorted(outside)[:3]}"
    shared = sorted(c for c in w.children & holds if use.get(c, 0) > 1)
    if shared:
        return f"shares {shared[:3]} with another branch"
    if not w.heads:
        return "no head module"
    multi = sorted(h for h in w.heads if log.n_calls(h) != 1)
    if multi:
        return f"head modules {multi} are called more than once"
    return ""


def find_branch_modules(model: nn.Module, example_inputs: Any, log: OpLog | None = None
                        ) -> list[BranchModule]:
    """Every branch module of ``model`` with at least two removable branches, in module
    order: a query on one pass recorded with ``grad=True`` (``log``, else recorded here).
    The model is unchanged (modes and ``requires_grad`` flags restored)."""
    if log is None or not log.grad:
        log = run_logged(model, example_inputs)
    param_of = {id(p): n for n, p in model.named_parameters()}
    module_outs = _module_outs(log)
    table = sums_and_concats(log)
    found = []
    for mname, _mod in model.named_modules():
        if log.n_calls(mname) != 1 or not log.outputs(mname):
            continue
        out = log.outputs(mname)[0]
        parsed = _terms(table, out, module_outs)
        if parsed is None or len(parsed[1]) < 2:
            continue
        bm = _analyse(model, mname, log, out, parsed[0], parsed[1], param_of)
        if len(bm.removable) >= 2:
            found.append(bm)
    return found


def iter_branches(modules: list[BranchModule]) -> Iterator[Branch]:
    """Removable branches of ``modules``, in order."""
    for bm in modules:
        yield from bm.removable
