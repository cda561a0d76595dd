"""Prune without retraining: re-fit the layers after a cut to the dense model's outputs.

After channels are removed, each layer that read them (its *consumer*: the next conv, an
attention output projection, an FFN down projection) computes something else than
before. :func:`reconstruct` repairs that on calibration data, layer by layer in execution
order, each layer fed the *pruned* model's own activations (so earlier repairs and their
leftovers are taken into account) and asked to reproduce the *dense* layer's outputs
(on the output channels it kept):

* ``mode="ls"`` — exact damped least squares (ridge) for the weight and bias:
  ``W̃ = C (G + λD)⁻¹`` from streamed sums ``G = Σ x̃x̃ᵀ``, ``C = Σ y x̃ᵀ``
  (:mod:`prunekit.importance.gram`); memory is one layer's Gram matrix. Convolutions are
  solved on unfolded patches, one system per convolution group (depthwise included).
* ``mode="bias"`` — the cheap option: only the bias moves, by the mean of what the layer
  now gets wrong, ``b ← b − E[W x̃ − y]`` (FLAP's bias compensation, generalized: it also
  absorbs the mean shift of the kept inputs). Layers without a bias are left as cut.
* ``mode="block"`` — least squares, then each *segment* (from one consumer to the next
  consumer's input, or to the model's output: a conv with its norm, nonlinearity and
  pooling; an FFN with its activation) is trained with Adam for ``steps`` steps to the
  dense model's tensor at the segment's end (see :mod:`prunekit.reconstruct.block`).

A fit is kept only if it lowers the layer's calibration error; the report lists every
layer with its relative error ``Σ‖ŷ − y‖² / Σ‖y‖²`` before and after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunekit.importance.calibration import preserved_state
from prunekit.importance.gram import Gram, ridge_solve, squared_error
from prunekit.importance.linear_forms import LinearForm, form_of
from prunekit.importance.streams import capture, execution_order
from prunekit.surgery.plan import Cut, Plan
from prunekit.surgery.state import Snapshot

MODES = ("bias", "ls", "block")
LAYERS = ("consumers", "all")


@dataclass
class ReconstructConfig:
    """How :func:`reconstruct` re-fits the layers after a cut.

    Parameters
    ----------
    mode
        ``"ls"`` (least squares), ``"bias"`` (bias compensation only) or ``"block"``
        (least squares, then Adam on each segment with its nonlinearity).
    damping
        Ridge ``λ`` as a fraction of the mean diagonal of the layer's Gram matrix.
    layers
        ``"consumers"``: the layers whose input features were cut; ``"all"``: every
        supported layer from the first consumer on (compensating propagated error too).
    steps, lr
        Adam steps and learning rate per segment (``mode="block"``).
    progress
        A progress bar over the layers (rich).
    """

    mode: str = "ls"
    damping: float = 0.01
    layers: str = "consumers"
    steps: int = 200
    lr: float = 1e-4
    progress: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"reconstruct mode must be one of {MODES}, got {self.mode!r}")
        if self.layers not in LAYERS:
            raise ValueError(f"reconstruct layers must be one of {LAYERS}, got {self.layers!r}")
        if isinstance(self.damping, bool) or not isinstance(self.damping, int | float) \
                or not self.damping >= 0:
            raise ValueError(f"reconstruct damping must be a number >= 0, got {self.damping!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"reconstruct steps must be an int >= 0, got {self.steps!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) or not self.lr > 0:
            raise ValueError(f"reconstruct lr must be a number > 0, got {self.lr!r}")

    @classmethod
    def of(cls, value: Any) -> ReconstructConfig | None:
        """What ``prune(reconstruct=...)`` accepts: False/None (off), True (``"ls"``), a
        mode name or a config. TypeError/ValueError name the argument otherwise."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, str):
            if value not in MODES:
                raise ValueError(f"reconstruct must be True, False or one of {MODES}, "
                                 f"got {value!r}")
            return cls(mode=value)
        if isinstance(value, cls):
            return value
        raise TypeError("reconstruct must be a bool, a mode name or a ReconstructConfig, "
                        f"got {type(value).__name__}")


@dataclass
class LayerReport:
    """One re-fitted layer (or segment): relative calibration error before and after.

    ``rows``: least-squares rows seen (samples × positions; 0 for a block segment).
    """

    layer: str
    method: str
    err_before: float
    err_after: float
    rows: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Target:
    """A layer to re-fit: name in both models, its weight's name, form, call count and
    kept output channels (None: all)."""

    name: str
    weight: str
    form: LinearForm
    calls: int
    kept_out: torch.Tensor | None
    consumer: bool


def reconstruct(dense: nn.Module, pruned: nn.Module, plan: Plan | Sequence[Plan],
                calibration: Any, config: ReconstructConfig | None = None
                ) -> list[LayerReport]:
    """Re-fit ``pruned``'s layers to ``dense``'s outputs on the calibration batches.

    Parameters
    ----------
    dense
        The model before the cut (unchanged; e.g. ``copy.deepcopy(model)`` taken before).
    pruned
        The same model after :func:`prunekit.surgery.remove_channels` with ``plan``;
        modified in place.
    plan
        The channel plan(s) applied, in order (says which inputs/outputs each layer lost).
    calibration
        An :class:`prunekit.importance.ImportanceContext` with ``batches`` (streamed: only
        one batch's activations are held at a time).
    config
        :class:`ReconstructConfig` (default: least squares).

    Returns
    -------
    list of LayerReport
        In execution order. All or nothing: on an error the pruned model is restored.
    """
    cfg = config or ReconstructConfig()
    batches = [inputs for inputs, _ in calibration.calibration_batches("reconstruct")]
    cuts = _cuts(plan)
    snap = Snapshot.take(pruned)
    try:
        with preserved_state(dense, need_grad=False), preserved_state(pruned, need_grad=False):
            targets, notes = find_targets(pruned, cuts, batches[0], cfg.layers)
            reports = notes + _run(dense, pruned, targets, batches, cuts, cfg)
    except Exception:
        snap.restore()
        raise
    return reports


def _run(dense: nn.Module, pruned: nn.Module, targets: list[Target], batches: list,
         cuts: list[Cut], cfg: ReconstructConfig) -> list[LayerReport]:
    if cfg.mode == "block":
        from prunekit.reconstruct.block import refit_segments

        return refit_segments(dense, pruned, targets, batches, cuts, cfg,
                              lambda t: fit_layer(dense, pruned, t, batches, cfg.damping))
    fit = fit_bias if cfg.mode == "bias" else fit_layer
    return [fit(dense, pruned, t, batches, cfg.damping)
            for t in _steps(targets, f"reconstruct ({cfg.mode})", cfg.progress)]


def _steps(items: list, description: str, progress: bool) -> Iterable:
    if not progress:
        return items
    from rich.progress import track

    return track(items, description=description)


def _cuts(plan: Plan | Sequence[Plan]) -> list[Cut]:
    plans = [plan] if isinstance(plan, Plan) else list(plan)
    for p in plans:
        if not isinstance(p, Plan):
            raise TypeError(f"plan must be a channel Plan or a list of them, got "
                            f"{type(p).__name__}")
    return [c for p in plans for c in p.cuts]


def kept(cuts: list[Cut], param: str, dim: int) -> torch.Tensor | None:
    """Original indices along ``dim`` of ``param`` that survive ``cuts`` (None: uncut)."""
    out = None
    for cut in cuts:
        if cut.param == param and cut.dim == dim:
            base = out if out is not None else torch.arange(cut.size)
            mask = torch.ones(cut.size, dtype=torch.bool)
            mask[torch.as_tensor(cut.removed, dtype=torch.long)] = False
            out = base[mask]
    return out


def find_targets(pruned: nn.Module, cuts: list[Cut], inputs: Any, layers: str
                 ) -> tuple[list[Target], list[LayerReport]]:
    """The layers to re-fit, in execution order, and notes on those left alone."""
    names = {id(p): n for n, p in pruned.named_parameters()}
    owners: dict[int, int] = {}
    for m in pruned.modules():
        for p in m._parameters.values():
            if p is not None:
                owners[id(p)] = owners.get(id(p), 0) + 1
    candidates, notes = {}, []
    for name, module in pruned.named_modules():
        form = form_of(module)
        if form is None or name in candidates or id(module.weight) not in names:
            continue
        if owners.get(id(module.weight), 0) > 1:
            notes.append(LayerReport(name, "skipped", float("nan"), float("nan"),
                                     note="weight shared with another module: left as cut"))
            continue
        candidates[name] = form
    order = execution_order(pruned, list(candidates), inputs)
    targets, started = [], False
    for name, calls in order:
        form = candidates[name]
        wname = names[id(form.module.weight)]
        consumer = kept(cuts, wname, form.in_dim) is not None
        started = started or consumer
        if consumer or (layers == "all" and started):
            out_dim = 1 - form.in_dim
            targets.append(Target(name, wname, form, calls, kept(cuts, wname, out_dim), consumer))
    called = {n for n, _ in order}
    for name, form in candidates.items():
        wname = names[id(form.module.weight)]
        if name not in called and kept(cuts, wname, form.in_dim) is not None:
            notes.append(LayerReport(name, "skipped", float("nan"), float("nan"),
                                     note="not called as a module (e.g. the out_proj of "
                                          "nn.MultiheadAttention): left as cut"))
    return targets, notes


def stream_pairs(dense: nn.Module, pruned: nn.Module, t: Target, batches: list,
                 consume: Callable[[torch.Tensor, torch.Tensor], None]) -> None:
    """For every batch and call: rows of ``t``'s input in the pruned model and its
    output (kept channels) in the dense model, handed to ``consume(rows, targets)``."""
    dm = dense.get_submodule(t.name)
    pm = pruned.get_submodule(t.name)
    with torch.no_grad():
        for inputs in batches:
            xs = capture(pruned, pm, inputs, calls=t.calls)
            ys = capture(dense, dm, inputs, where="output", calls=t.calls)
            for x, y in zip(xs, ys, strict=True):
                out = t.form.outputs(y)
                if t.kept_out is not None:
                    out = out[:, t.kept_out.to(out.device)]
                consume(t.form.rows(x), out)


def _group_slices(t: Target, k_total: int, out_total: int) -> list[tuple[slice, slice]]:
    g = t.form.groups
    k, o = k_total // g, out_total // g
    return [(slice(j * k, (j + 1) * k), slice(j * o, (j + 1) * o)) for j in range(g)]


def fit_layer(dense: nn.Module, pruned: nn.Module, t: Target, batches: list,
              damping: float) -> LayerReport:
    """Damped least squares for ``t``'s weight (and bias), per convolution group."""
    intercept = t.form.bias is not None
    grams: list[Gram] = []
    slices: list[tuple[slice, slice]] = []

    def add(rows: torch.Tensor, out: torch.Tensor) -> None:
        if not grams:
            slices.extend(_group_slices(t, rows.shape[1], out.shape[1]))
            grams.extend(Gram.empty(s.stop - s.start, o.stop - o.start, intercept,
                                    rows.device) for s, o in slices)
        for gram, (s, o) in zip(grams, slices, strict=True):
            gram.add(rows[:, s], out[:, o])

    stream_pairs(dense, pruned, t, batches, add)
    w0 = _augmented(t.form)
    solved = [ridge_solve(g, damping) for g in grams]
    before = sum(float(squared_error(g, w0[o]).sum()) for g, (_, o) in zip(grams, slices,
                                                                        strict=True))
    after = sum(float(squared_error(g, w).sum()) for g, w in zip(grams, solved, strict=True))
    energy = sum(float(g.yy.sum()) for g in grams) or 1.0
    return _accept(t, torch.cat(solved), before / energy, after / energy,
                   grams[0].n if grams else 0, "ls")


def fit_bias(dense: nn.Module, pruned: nn.Module, t: Target, batches: list,
             damping: float) -> LayerReport:
    """Bias compensation: ``b ← b − mean(W x̃ − y)`` (the weight is not touched)."""
    if t.form.bias is None:
        return LayerReport(t.name, "bias", float("nan"), float("nan"),
                           note="no bias to fold the compensation into: left as cut")
    w0 = _augmented(t.form)
    sums: dict[str, Any] = {"r": None, "r2": None, "y2": 0.0, "n": 0}

    def add(rows: torch.Tensor, out: torch.Tensor) -> None:
        w = w0.to(rows.device)
        r = torch.cat([_apply(rows[:, s], w[o]) - out[:, o].double()
                       for s, o in _group_slices(t, rows.shape[1], out.shape[1])], dim=1)
        sums["r"] = r.sum(0) if sums["r"] is None else sums["r"] + r.sum(0)
        sums["r2"] = r.pow(2).sum(0) if sums["r2"] is None else sums["r2"] + r.pow(2).sum(0)
        sums["y2"] += float(out.double().pow(2).sum())
        sums["n"] += rows.shape[0]

    stream_pairs(dense, pruned, t, batches, add)
    n, energy = sums["n"], sums["y2"] or 1.0
    mean = sums["r"] / n
    before = float(sums["r2"].sum())
    after = max(before - n * float(mean.pow(2).sum()), 0.0)
    w = w0.clone()
    w[:, -1] -= mean.to(w.device)
    return _accept(t, w, before / energy, after / energy, n, "bias")


def _apply(rows: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``W̃ x̃`` for rows and an augmented weight (last column: the bias)."""
    return rows.double() @ w[:, :-1].t() + w[:, -1]


def _augmented(form: LinearForm) -> torch.Tensor:
    """``[W, b]`` as float64 (no bias column when the layer has none)."""
    w = form.weight().double()
    if form.bias is None:
        return w
    return torch.cat([w, form.bias.detach().double()[:, None].to(w.device)], dim=1)


def _accept(t: Target, w: torch.Tensor, before: float, after: float, rows: int,
            method: str) -> LayerReport:
    """Write ``w`` into the layer if it is finite and lowers the error; the report."""
    ok = bool(torch.isfinite(w).all()) and after <= before
    if ok:
        has_bias = t.form.bias is not None
        t.form.set(w[:, :-1] if has_bias else w, w[:, -1] if has_bias else None)
        return LayerReport(t.name, method, before, after, rows)
    return LayerReport(t.name, method, before, before, rows,
                       note="fit did not lower the calibration error: weights kept")
