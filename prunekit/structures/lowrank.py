"""Low-rank layers as a structure: penalize the rank, then factor where it pays, measured.

1. Training: :class:`LowRankProx` applies the prox of ``λ((1 − ρ)‖W‖_F + ρ‖W‖_*)`` to
   every filter matrix / linear weight after each optimizer step (composes with
   :class:`prunekit.methods.ProximalGroupLasso`), so small singular values become zero.
2. :func:`find_lowrank` reads each layer's numerical rank ``r``; the layer is *cheaper*
   factored when ``r·(n + out) < out·n`` (``n = in·∏k``).
3. :func:`factorize` replaces such layers by two (``k×k`` conv to ``r`` channels then
   ``1×1``; or two Linears) that reproduce the rank-``r`` weight's outputs, and — the
   point — only where the *measured* latency of the layer on its real input improves
   (:func:`prunekit.measure.latency`, on the given device and threads). Every timing is
   in the returned report.

The factored layer becomes an ``nn.Sequential`` at the same name (``conv`` →
``conv.0``, ``conv.1``): a plain module; the plan (JSON) rebuilds it on load.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from prunekit.inputs import call_model, inference_mode_of
from prunekit.structures._lowrank_factor import cost, factor_layer, factored_shapes
from prunekit.structures._lowrank_prox import (
    LowRankProx,
    factorable_layers,
    numerical_rank,
    weight_matrix,
)
from prunekit.structures.plancheck import check_header
from prunekit.structures.registry import Structure, register
from prunekit.surgery import SurgeryError
from prunekit.surgery import validate as v
from prunekit.surgery.validate import PlanError, key

PLAN_VERSION = 1
KINDS = ("Linear", "Conv1d", "Conv2d", "Conv3d")
__all__ = ["LowRankLayer", "LowRankPlan", "LowRankProx", "LowRankResult", "apply_lowrank_plan",
           "factor_layer", "factorize", "factorize_layers", "find_lowrank", "score_lowrank"]


@dataclass(frozen=True)
class LowRankLayer:
    """A layer, its numerical rank and what factoring it at that rank costs.

    ``cost_before = out·n`` and ``cost_after = r·(n + out)`` are weight elements (MACs per
    output position); ``cheaper`` is ``cost_after < cost_before``.
    """

    name: str
    kind: str
    rank: int
    full_rank: int
    cost_before: int
    cost_after: int

    @property
    def cheaper(self) -> bool:
        return 0 < self.rank and self.cost_after < self.cost_before


def find_lowrank(model: nn.Module, example_inputs: Any = None, *, rtol: float = 1e-5,
                 layers: Sequence[str] | None = None) -> list[LowRankLayer]:
    """Every factorable layer with its numerical rank (``σ_i > rtol·σ_max``).

    ``example_inputs`` is not needed (ranks come from the weights); it is accepted so the
    verb has the registry's signature. The model is not changed.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    mods = dict(model.named_modules())
    names = factorable_layers(model) if layers is None else list(layers)
    out = []
    for name in names:
        m = mods.get(name)
        if m is None or name not in factorable_layers(model):
            raise ValueError(f"layers: {name!r} is not an nn.Linear / nn.Conv* (groups=1) of "
                             "the model")
        r = numerical_rank(weight_matrix(m), rtol)
        out.append(LowRankLayer(name, type(m).__name__, r, min(weight_matrix(m).shape),
                                cost(m), cost(m, max(r, 1))))
    return out


def score_lowrank(model: nn.Module, units: Sequence[LowRankLayer], example_inputs: Any = None
                  ) -> dict[str, float]:
    """``{layer: cost_after / cost_before}``; higher means keep (factoring saves less)."""
    return {u.name: u.cost_after / u.cost_before for u in units}


@dataclass
class LowRankPlan:
    """``layers[name] = {"rank", "kind"}`` for every factored layer (JSON, replayable)."""

    layers: dict[str, dict[str, Any]]
    version: int = PLAN_VERSION
    structure: str = "lowrank"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LowRankPlan:
        """Inverse of :meth:`to_dict`; :class:`~prunekit.surgery.PlanError` (a ValueError)
        naming the field on a foreign, newer or malformed plan."""
        d = check_header(data, "lowrank", PLAN_VERSION, ("layers",))
        return cls(v.mapping(d["layers"], "layers", _layer_entry), d["version"])


def _layer_entry(data: Any, at: str) -> dict[str, Any]:
    d = v.record(data, at, ("rank", "kind"))
    return {"rank": v.integer(d["rank"], f"{at}.rank", 1, 1 << 31),
            "kind": v.string(d["kind"], f"{at}.kind", KINDS)}


def _replace(model: nn.Module, new: dict[str, nn.Module]) -> dict[str, nn.Module]:
    """Put ``new[name]`` at each name; return the originals."""
    old = {}
    for name, module in new.items():
        parent, _, key = name.rpartition(".")
        holder = model.get_submodule(parent)
        old[name] = holder._modules[key]
        holder._modules[key] = module
    return old


def _checked_replace(model: nn.Module, new: dict[str, nn.Module], example_inputs: Any) -> None:
    """Replace, forward-check the output shapes; on failure put the originals back."""
    if any(name == "" for name in new):
        raise ValueError("the model itself is a single layer; wrap it in nn.Sequential")
    before = None
    if example_inputs is not None:
        with inference_mode_of(model):
            before = _shapes(call_model(model, example_inputs))
    old = _replace(model, new)
    try:
        if before is not None:
            with inference_mode_of(model):
                after = _shapes(call_model(model, example_inputs))
            if after != before:
                raise RuntimeError(f"output shapes changed from {before} to {after}")
    except Exception as err:
        _replace(model, old)
        raise SurgeryError(f"factoring {sorted(new)} failed ({type(err).__name__}: {err}); "
                           "the model was restored", op="lowrank") from err


def _shapes(out: Any) -> list[tuple]:
    from prunekit.graph.trace import iter_tensors

    return [tuple(t.shape) for t in iter_tensors(out)]


def factorize_layers(model: nn.Module, names: Iterable[str] | dict[str, int],
                     example_inputs: Any = None, *, rtol: float = 1e-5) -> LowRankPlan:
    """Factor the named layers (at their numerical rank, or ``{name: rank}``), in place,
    all or nothing, without timing. ValueError on unknown names or a rank ≥ full rank
    that would make the layer bigger; the model is then untouched."""
    ranks = dict(names) if isinstance(names, dict) else None
    chosen = list(ranks) if ranks is not None else list(names)
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"names: duplicates in {chosen}")
    found = {u.name: u for u in find_lowrank(model, rtol=rtol, layers=chosen)}
    mods = dict(model.named_modules())
    new = {}
    for name in chosen:
        r = int(ranks[name]) if ranks is not None else found[name].rank
        if not 1 <= r <= found[name].full_rank:
            raise ValueError(f"names: rank of {name!r} must be in [1, {found[name].full_rank}],"
                             f" got {r}")
        new[name] = factor_layer(mods[name], r)
    _checked_replace(model, new, example_inputs)
    return LowRankPlan({n: {"rank": new[n][0].weight.shape[0], "kind": found[n].kind}
                        for n in chosen})


@dataclass
class LowRankResult:
    """What :func:`factorize` did: the model (in place), the plan and one report row per
    candidate layer (rank, costs, measured latencies, applied or why not)."""

    model: nn.Module
    plan: LowRankPlan
    rows: list[dict[str, Any]] = field(default_factory=list)


def _layer_inputs(model: nn.Module, names: list[str], example_inputs: Any) -> dict[str, Any]:
    mods = dict(model.named_modules())
    seen: dict[str, Any] = {}
    handles = [mods[n].register_forward_pre_hook(
        lambda _m, args, n=n: seen.setdefault(n, args[0].detach().clone())) for n in names]
    try:
        with inference_mode_of(model):
            call_model(model, example_inputs)
    finally:
        for h in handles:
            h.remove()
    return seen


def factorize(model: nn.Module, example_inputs: Any, *, rtol: float = 1e-5,
              layers: Sequence[str] | None = None, measure: bool = True,
              device: str = "cpu", threads: int | None = 1, min_gain: float = 0.0,
              warmup: int = 3, repeats: int = 20) -> LowRankResult:
    """Factor every layer whose rank makes it cheaper and whose measured latency improves.

    For each candidate (``cheaper``), the layer and its factored pair are timed on the
    layer's own input from ``example_inputs`` (median of ``repeats`` passes, after
    ``warmup``); the pair replaces the layer only when
    ``t_after < (1 − min_gain)·t_before``. With ``measure=False`` every cheaper layer is
    factored (MAC theory only; the rows say so). All replacements happen at once, all or
    nothing, with a forward check.
    """
    from prunekit.measure import latency

    found = find_lowrank(model, rtol=rtol, layers=layers)
    mods = dict(model.named_modules())
    inputs = _layer_inputs(model, [u.name for u in found if u.cheaper], example_inputs)
    rows, chosen = [], {}
    for u in found:
        row = {**asdict(u), "cheaper": u.cheaper, "applied": False}
        if not u.cheaper or u.name not in inputs:
            row["reason"] = "not cheaper at this rank" if not u.cheaper else "not called"
            rows.append(row)
            continue
        pair = factor_layer(mods[u.name], u.rank)
        if measure:
            x = inputs[u.name]
            t0 = latency(mods[u.name], x, device=device, threads=threads, warmup=warmup,
                         repeats=repeats).median_ms
            t1 = latency(pair, x, device=device, threads=threads, warmup=warmup,
                         repeats=repeats).median_ms
            row.update(latency_before_ms=t0, latency_after_ms=t1, device=device,
                       threads=threads)
            if not t1 < (1.0 - min_gain) * t0:
                row["reason"] = f"measured slower or not faster enough ({t1:.4f} ms vs " \
                                f"{t0:.4f} ms)"
                rows.append(row)
                continue
        else:
            row["reason"] = "applied on MAC theory (measure=False)"
        row["applied"] = True
        chosen[u.name] = pair
        rows.append(row)
    _checked_replace(model, chosen, example_inputs)
    plan = LowRankPlan({n: {"rank": p[0].weight.shape[0], "kind": type(mods[n]).__name__}
                        for n, p in chosen.items()})
    return LowRankResult(model, plan, rows)


def apply_lowrank_plan(model: nn.Module, plan: LowRankPlan | dict,
                       example_inputs: Any = None) -> LowRankPlan:
    """Rebuild the factored structure on a fresh model (weights come from the checkpoint)."""
    if isinstance(plan, dict):
        plan = LowRankPlan.from_dict(plan)
    mods = dict(model.named_modules())
    factorable = set(factorable_layers(model))
    new = {}
    for name, info in plan.layers.items():
        m = mods.get(name)
        if name not in factorable or type(m).__name__ != info["kind"] or not name:
            raise PlanError(f"the model has no factorable {info['kind']} named {name!r}",
                            field=key("layers", name))
        full = min(weight_matrix(m).shape)
        if info["rank"] > full:
            raise PlanError(f"rank {info['rank']} exceeds the layer's full rank {full}",
                            field=f"{key('layers', name)}.rank")
        new[name] = factored_shapes(m, info["rank"])
    _checked_replace(model, new, example_inputs)
    return plan


# No ``groups`` verb: the hybrid penalty is spectral (singular values), not a norm of
# parameter slices, so it is applied by :class:`LowRankProx` rather than ProximalGroupLasso.
LOWRANK = register(Structure(
    "lowrank", find=find_lowrank, score=score_lowrank, remove=factorize_layers,
    prune=factorize, apply_plan=apply_lowrank_plan))
