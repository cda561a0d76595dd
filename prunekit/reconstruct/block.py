"""Segment-level reconstruction: a block with its nonlinearity re-fit with Adam.

Layer-wise least squares matches each layer's *pre-activation* output; what the next
layer sees is after the norm, nonlinearity and pooling, and errors that least squares
cannot see there add up layer after layer. Here the unit is a *segment*: from one
re-fitted layer (a consumer of cut channels) up to the input of the next one — or the
model's output for the last — i.e. a conv with its BatchNorm/ReLU/pooling, an FFN with
its activation. Each segment is first solved by least squares (its first layer), then
every parameter of the modules called inside it is trained with Adam to reproduce the
dense model's tensor at the segment's end (the kept features of the next layer's input,
or the dense outputs), on the calibration batches, the pruned model's own activations
flowing in. The rest of the model is frozen; the segment's parameters are kept only if
the calibration error went down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from prunekit.importance.streams import capture, execution_order
from prunekit.inputs import call_model
from prunekit.reconstruct.layerwise import LayerReport, ReconstructConfig, Target, kept
from prunekit.surgery.plan import Cut


def refit_segments(dense: nn.Module, pruned: nn.Module, targets: list[Target], batches: list,
                   cuts: list[Cut], cfg: ReconstructConfig,
                   fit: Callable[[Target], LayerReport]) -> list[LayerReport]:
    """Least squares on each consumer, then Adam on its segment; reports of both."""
    starts = [t for t in targets if t.consumer]
    with_params = [n for n, m in pruned.named_modules()
                   if any(p is not None for p in m._parameters.values())]
    position = {n: i for i, (n, _) in enumerate(execution_order(pruned, with_params,
                                                                batches[0]))}
    reports = []
    for i, start in enumerate(_progress(starts, cfg)):
        reports.append(fit(start))
        end = starts[i + 1] if i + 1 < len(starts) else None
        lo, hi = position[start.name], position[end.name] if end else len(position)
        names = [n for n, p in position.items() if lo <= p < hi]
        params = list({id(p): p for n in names
                       for p in pruned.get_submodule(n)._parameters.values()
                       if p is not None and p.is_floating_point()}.values())
        reports.append(_train(dense, pruned, _Segment(start, end, params, cuts), batches, cfg))
    return reports


def _progress(items: list, cfg: ReconstructConfig):
    if not cfg.progress:
        return items
    from rich.progress import track

    return track(items, description="reconstruct (block)")


class _Segment:
    """Parameters between ``start`` and ``end`` and how to read its output in both models."""

    def __init__(self, start: Target, end: Target | None, params: list[nn.Parameter],
                 cuts: list[Cut]) -> None:
        self.start, self.end, self.params = start, end, params
        self.keep = None if end is None else kept(cuts, end.weight, end.form.in_dim)
        self.name = f"{start.name} -> {end.name if end else 'output'}"

    def outputs(self, model: nn.Module, inputs: Any, *, dense: bool,
                detach: bool = True) -> list[torch.Tensor]:
        """The segment's end in ``model``: the next layer's input (the dense model's at the
        kept features) or the model's outputs."""
        if self.end is None:
            return _leaves(call_model(model, inputs))
        module = model.get_submodule(self.end.name)
        xs = capture(model, module, inputs, calls=self.end.calls, detach=detach)
        if dense and self.keep is not None:
            dim = self.end.form.feature_dim
            xs = [x.index_select(dim, self.keep.to(x.device)) for x in xs]
        return xs


def _leaves(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    if isinstance(out, dict):
        return [t for v in out.values() for t in _leaves(v)]
    if isinstance(out, tuple | list):
        return [t for v in out for t in _leaves(v)]
    return [t for v in getattr(out, "values", lambda: [])() for t in _leaves(v)]


def _loss(pred: list[torch.Tensor], target: list[torch.Tensor]) -> tuple[torch.Tensor, float]:
    """``Σ‖p − t‖²`` and ``Σ‖t‖²`` over matching tensors."""
    err = sum(((p.float() - t.float()) ** 2).sum() for p, t in zip(pred, target, strict=True))
    return err, float(sum(float((t.float() ** 2).sum()) for t in target))


def _error(dense: nn.Module, pruned: nn.Module, seg: _Segment, batches: list,
           targets: dict[int, list[torch.Tensor]]) -> float:
    num = den = 0.0
    with torch.no_grad():
        for i, inputs in enumerate(batches):
            err, energy = _loss(seg.outputs(pruned, inputs, dense=False),
                                _target(dense, seg, inputs, i, targets))
            num, den = num + float(err), den + energy
    return num / (den or 1.0)


CACHE_BYTES = 256 * 2**20
"""Dense targets of a segment are kept across Adam steps up to this size, else recomputed."""


def _target(dense: nn.Module, seg: _Segment, inputs: Any, i: int,
            cache: dict[int, list[torch.Tensor]]) -> list[torch.Tensor]:
    if i in cache:
        return cache[i]
    with torch.no_grad():
        out = seg.outputs(dense, inputs, dense=True)
    held = sum(t.numel() * t.element_size() for ts in cache.values() for t in ts)
    if held + sum(t.numel() * t.element_size() for t in out) <= CACHE_BYTES:
        cache[i] = out
    return out


def _train(dense: nn.Module, pruned: nn.Module, seg: _Segment, batches: list,
           cfg: ReconstructConfig) -> LayerReport:
    """Adam on the segment's parameters; kept only if the calibration error went down."""
    cache: dict[int, list[torch.Tensor]] = {}
    before = _error(dense, pruned, seg, batches, cache)
    if not seg.params or cfg.steps == 0:
        return LayerReport(seg.name, "block", before, before, note="no parameters or steps")
    saved = [p.detach().clone() for p in seg.params]
    flags = [(p, p.requires_grad) for p in pruned.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        for p in seg.params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(seg.params, lr=cfg.lr)
        with torch.enable_grad():
            for step in range(cfg.steps):
                i = step % len(batches)
                target = _target(dense, seg, batches[i], i, cache)
                pred = seg.outputs(pruned, batches[i], dense=False, detach=False)
                err, energy = _loss(pred, target)
                opt.zero_grad(set_to_none=True)
                (err / (energy or 1.0)).backward()
                opt.step()
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
            p.grad = None
    after = _error(dense, pruned, seg, batches, cache)
    if after < before:
        return LayerReport(seg.name, "block", before, after)
    with torch.no_grad():
        for p, s in zip(seg.params, saved, strict=True):
            p.copy_(s)
    return LayerReport(seg.name, "block", before, before,
                       note="Adam did not lower the calibration error: segment kept")
