"""Cost of a model whose channels are partly removed: MACs, parameters or latency.

For every weight ``W`` of a Linear/Conv layer, ``MACs(W) = numel(W) · positions`` where
``positions`` is the number of output positions per sample (``H·W`` for a 2-d conv, the
token count for a Linear), recorded once with forward hooks. When channels are removed
along some dimensions, ``numel`` shrinks by the kept fraction of each cut dimension:

``cost = Σ_W positions(W) · numel(W) · Π_d alive_d(W) / size_d(W)``

which is exact for Linear and (grouped) Conv layers. For ``kind="params"`` every
parameter counts with ``positions = 1``. Bias/BatchNorm MACs are ignored (a few percent).

``kind="latency"`` (:class:`LatencyCost`) predicts milliseconds on a device with
:class:`prunekit.hardware.LatencyModel` (layers timed alone, the measured rest of the
model). Each Conv/Linear layer is timed at four widths, dense and ``shrink``× narrower
along each dimension, and interpolated bilinearly,

``t(c_in, c_out) = a + b·c_in + c·c_out + d·c_in·c_out``,

so the cost has a per-channel latency *slope* and is cheap enough to evaluate at every
training step (no timing after the build). Every cost model answers
``cost(removed)`` with ``removed[(param, dim)]`` = indices cut along ``dim``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from prunekit.methods.masks import named_dense_parameters

COST_KINDS = ("macs", "params", "latency")
Removed = Mapping[tuple[str, int], int]


class Cost(Protocol):
    """Anything with ``cost(removed) -> float`` (removed indices per (param, dim))."""

    def cost(self, removed: Removed | None = None) -> float: ...


def positions_per_weight(model: nn.Module, example_inputs: Sequence | torch.Tensor) -> dict:
    """``{weight name: output positions per sample}`` for every ≥2-d weight, by one forward."""
    found: dict[str, float] = {}
    hooks = []

    def make_hook(name: str, out_channels: int):
        def hook(_mod, _inp, out):
            if isinstance(out, torch.Tensor) and out.ndim >= 1 and out.shape[0] > 0:
                found[name] = out[0].numel() / out_channels
        return hook

    for mod_name, module in model.named_modules():
        w = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        if w is None:
            orig = getattr(getattr(module, "parametrizations", None), "weight", None)
            w = getattr(orig, "original", None)
        if w is not None and w.ndim >= 2:
            name = f"{mod_name}.weight" if mod_name else "weight"
            hooks.append(module.register_forward_hook(make_hook(name, w.shape[0])))
    inputs = example_inputs if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()  # a training-mode forward would update BatchNorm running statistics
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for m, mode in modes:
            m.training = mode
        for h in hooks:
            h.remove()
    return found


class CostModel:
    """Cost of the model as a function of which channels are alive along each cut dimension.

    Parameters
    ----------
    shapes : mapping name -> shape
        Every parameter counted.
    positions : mapping name -> float
        Multiplier per parameter (output positions for MACs, 1 for params).
    """

    def __init__(self, shapes: Mapping[str, tuple], positions: Mapping[str, float]) -> None:
        self.shapes = dict(shapes)
        self.positions = dict(positions)

    @classmethod
    def build(cls, model: nn.Module, kind: str, example_inputs=None) -> CostModel:
        """Build from a model; ``kind="macs"`` needs ``example_inputs`` (one forward pass)."""
        if kind not in ("macs", "params"):
            raise ValueError(f"kind must be one of ('macs', 'params') here (latency: "
                             f"build_cost or LatencyCost.build), got {kind!r}")
        shapes = {n: tuple(p.shape) for n, p in named_dense_parameters(model)}
        if kind == "params":
            return cls(shapes, dict.fromkeys(shapes, 1.0))
        if example_inputs is None:
            raise ValueError("example_inputs is required for a MAC cost model")
        pos = positions_per_weight(model, example_inputs)
        return cls({n: shapes[n] for n in pos if n in shapes}, pos)

    def cost(self, removed: Mapping[tuple[str, int], int] | None = None) -> float:
        """Total cost when ``removed[(param, dim)]`` channels are gone along ``dim``."""
        removed = removed or {}
        total = 0.0
        for name, shape in self.shapes.items():
            frac = 1.0
            for (pname, dim), count in removed.items():
                if pname == name:
                    frac *= max(shape[dim] - count, 0) / shape[dim]
            numel = 1
            for s in shape:
                numel *= s
            total += self.positions[name] * numel * frac
        return total


# ---------------------------------------------------------------------------- latency
@dataclass(frozen=True)
class Bilinear:
    """``t(ci, co) = a + b·ci + c·co + d·ci·co`` through four timed corners (clamped ≥ 0)."""

    a: float
    b: float
    c: float
    d: float

    @classmethod
    def through(cls, hi: tuple[int, int], lo: tuple[int, int],
                t: Callable[[int, int], float]) -> Bilinear:
        """Fit through ``t`` at ``(hi_i|lo_i, hi_o|lo_o)``; a dimension with ``lo == hi``
        is constant. Timings are made monotone (narrower never slower), because on a
        noisy machine a narrower layer can time slower than a wider one."""
        (ni, no), (li, lo_) = hi, lo
        t_hh = t(ni, no)
        t_lh = min(t(li, no), t_hh) if li < ni else t_hh
        t_hl = min(t(ni, lo_), t_hh) if lo_ < no else t_hh
        t_ll = min(t(li, lo_), t_lh, t_hl) if li < ni and lo_ < no else min(t_lh, t_hl)
        di, do = max(ni - li, 1), max(no - lo_, 1)
        d = (t_hh - t_lh - t_hl + t_ll) / (di * do)
        b = (t_hh - t_lh) / di - d * no
        c = (t_hh - t_hl) / do - d * ni
        return cls(t_hh - b * ni - c * no - d * ni * no, b, c, d)

    def __call__(self, ci: float, co: float) -> float:
        return max(self.a + self.b * ci + self.c * co + self.d * ci * co, 0.0)


class LatencyCost:
    """Predicted latency (ms) of the model with some channels removed, on one device.

    ``cost = λ·Σ_layers t_layer(c_in, c_out) + rest·(β + (1 − β)·a)`` with the bilinear
    layer tables of the module docstring and ``λ``, ``rest``, ``β``, ``a`` from
    :class:`prunekit.hardware.LatencyModel` (the dense prediction equals the measured dense
    latency). Build with :meth:`build`; ``build_seconds`` and ``timed`` say what it cost.
    """

    def __init__(self, latency_model: Any, tables: Mapping[str, Bilinear]) -> None:
        self.model = latency_model
        self.tables = dict(tables)
        self.build_seconds = 0.0
        self._by_weight = {la.weight: la for la in latency_model.layers}

    @classmethod
    def build(cls, model: nn.Module, example_inputs: Any, device: str = "cpu",
              threads: int | None = 1, batch_size: int | None = None, shrink: float = 0.5,
              layer_timer: Callable | None = None, latency_fn: Callable | None = None,
              use_cache: bool = True) -> LatencyCost:
        """Time ``model`` (whole, and its layers at four widths each) on ``device``.

        ``batch_size`` repeats the example inputs to the timing batch; ``layer_timer`` and
        ``latency_fn`` replace the measurements (tests); ``use_cache`` reads and writes the
        layer timings in the device cache of :mod:`prunekit.hardware`. The model is not
        modified.
        """
        import time

        from prunekit.hardware import DeviceSpec, LatencyModel
        from prunekit.hardware.timing import model_latency_fn, with_batch

        if not 0.0 < shrink < 1.0:
            raise ValueError(f"shrink must be in (0, 1), got {shrink!r}")
        if example_inputs is None:
            raise ValueError("example_inputs is required for a latency cost model")
        start = time.perf_counter()
        spec = DeviceSpec(device, threads)
        x = with_batch(example_inputs, batch_size)
        dense_ms = (latency_fn or model_latency_fn(x, spec))(model)
        lm = LatencyModel.build(model, x, spec, dense_ms, layer_timer, use_cache)
        tables = {}
        for la in lm.layers:
            lo = (max(1, round(shrink * la.n_in)), max(1, round(shrink * la.n_out)))
            if la.depthwise:  # one width (c_in = c_out): constant along c_in
                tables[la.name] = Bilinear.through(
                    (la.n_in, la.n_out), (la.n_in, lo[1]),
                    lambda ci, co, la=la: lm.layer_ms(la, co, co))
            else:
                tables[la.name] = Bilinear.through(
                    (la.n_in, la.n_out), lo, lambda ci, co, la=la: lm.layer_ms(la, ci, co))
        lm.flush()
        out = cls(lm, tables)
        out.build_seconds = time.perf_counter() - start
        return out

    @property
    def timed(self) -> int:
        """Layer timings made by the build (cache misses)."""
        return self.model.timed

    def widths(self, removed: Removed | None = None) -> dict[str, tuple[int, int]]:
        """``{layer: (c_in, c_out)}`` after removing ``removed`` (as ``Allocation.widths``)."""
        removed = removed or {}
        out = {}
        for la in self.model.layers:
            cout = la.n_out - removed.get((la.weight, 0), 0)
            groups = 1 if la.kind != "conv" or la.depthwise else dict(la.attrs).get("groups", 1)
            cin = la.n_in - removed.get((la.weight, 1), 0) * groups
            out[la.name] = (cout, cout) if la.depthwise else (cin, cout)
        return out

    def cost(self, removed: Removed | None = None) -> float:
        """Predicted milliseconds with ``removed`` cut."""
        widths = self.widths(removed)
        lm = self.model
        layers = sum(self.tables[la.name](*widths[la.name]) for la in lm.layers)
        return lm.scale * layers + lm.rest_at(lm.activation_fraction(widths))


def build_cost(model: nn.Module, kind: str, example_inputs: Any = None,
               **latency_options: Any) -> Cost:
    """The cost model of ``kind`` (``"macs"``, ``"params"`` or ``"latency"``).

    ``latency_options`` go to :meth:`LatencyCost.build` (device, threads, batch_size ...).
    """
    if kind not in COST_KINDS:
        raise ValueError(f"kind must be one of {COST_KINDS}, got {kind!r}")
    if kind == "latency":
        return LatencyCost.build(model, example_inputs, **latency_options)
    if latency_options:
        raise ValueError(f"{sorted(latency_options)} apply to kind='latency' only")
    return CostModel.build(model, kind, example_inputs)
