"""Predict a pruned model's latency from per-layer latencies measured on the target device.

``predict = λ · Σ_layers t_layer(cin, cout) + rest · (β + (1 − β) · a)``

* ``t_layer(cin, cout)`` — the layer (conv / linear) rebuilt at those widths and timed alone
  on the device; every timing is cached on disk under the device signature, so a layer
  shape is timed once per machine.
* ``rest = T_dense − λ · Σ_layers t_layer(dense)`` — the measured remainder (norms,
  activations, pooling, attention products, Python). Elementwise ops shrink with the
  activations, so it scales with ``a``, the fraction of layer output elements kept;
  ``β = 0.2`` is its fixed share (Python and per-op overhead; eager CPU inference spends
  most of the rest in elementwise ops).
* ``λ`` — how a layer timed alone compares with the same layer inside the model (caches,
  threads already awake, a busy machine). It starts at 1 (less if the layers alone add up
  to more than the whole model) and is fitted on one measured pruned model
  (:meth:`LatencyModel.calibrate`); ``T_dense`` stays exact whatever ``λ``.
* From the second measured model on, ``β`` is fitted too (jointly with ``λ``, least
  squares in relative error over every measurement so far): at batch 1 on a CPU most of
  the rest is per-operator overhead that does not shrink (β near 1), at large batch most
  of it is elementwise work that does (β near 0); the prior 0.2 made batch-1 predictions
  10–20 % optimistic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from prunekit.hardware.cache import DiskCache
from prunekit.hardware.layers import LayerSpec, profile_layers, rebuild
from prunekit.hardware.signature import DeviceSpec, device_signature
from prunekit.hardware.timing import place_inputs, place_module, time_placed

LayerTimer = Callable[[LayerSpec, int, int], float]  # (layer, cin, cout) -> ms
Widths = dict[str, tuple[int, int]]  # layer name -> (cin, cout)


def default_layer_timer(spec: DeviceSpec, warmup: int = 1, repeats: int = 3) -> LayerTimer:
    """Time a layer rebuilt at ``(cin, cout)`` alone on ``spec``: the fastest of
    ``repeats`` runs (layers are compared with each other; the measured rest absorbs the
    difference to a typical whole-model run)."""
    def timer(layer: LayerSpec, cin: int, cout: int) -> float:
        module, x = rebuild(layer, cin, cout)
        return time_placed(place_module(module, spec), place_inputs(x, spec), spec,
                           warmup, repeats, stat="min_ms")
    return timer


@dataclass
class LatencyModel:
    """Per-layer latency tables plus the measured remainder; see the module docstring.

    Build with :meth:`build`; ``timed`` counts the layer timings that were not cached.
    """

    layers: list[LayerSpec]
    timer: LayerTimer
    cache: DiskCache
    dense_ms: float = 0.0
    rest_ms: float = 0.0
    beta: float = 0.2
    scale: float = 1.0
    timed: int = 0
    save_every: int = 20
    observations: list[tuple[Widths, float]] = field(default_factory=list)
    _unsaved: int = field(default=0, repr=False)

    @classmethod
    def build(cls, model: nn.Module, inputs: Any, spec: DeviceSpec, dense_ms: float,
              timer: LayerTimer | None = None, use_cache: bool = True) -> LatencyModel:
        """Profile the layers of ``model`` on ``inputs`` (timing batch) and fit the rest.

        ``dense_ms`` is the measured latency of the dense model on ``spec``.
        """
        cache = DiskCache.open("latency", device_signature(spec), persist=use_cache)
        lm = cls(profile_layers(model, inputs), timer or default_layer_timer(spec), cache,
                 dense_ms=float(dense_ms))
        lm.set_scale(1.0)
        lm.flush()
        return lm

    def dense_widths(self) -> Widths:
        return {la.name: (la.n_in, la.n_out) for la in self.layers}

    def layer_ms(self, layer: LayerSpec, cin: int, cout: int) -> float:
        """Cached latency of ``layer`` at ``(cin, cout)``; timed on a cache miss."""
        key = layer.key(cin, cout)
        hit = self.cache.entries.get(key)
        if hit is None:
            hit = float(self.timer(layer, cin, cout))
            self.cache.entries[key] = hit
            self.timed += 1
            self._unsaved += 1
            if self._unsaved >= self.save_every:
                self.flush()
        return hit

    def layers_ms(self, widths: Widths, names: Iterable[str] | None = None) -> float:
        """``Σ t_layer`` over ``names`` (default all layers) at ``widths``."""
        wanted = None if names is None else set(names)
        return sum(self.layer_ms(la, *widths[la.name]) for la in self.layers
                   if wanted is None or la.name in wanted)

    def activation_fraction(self, widths: Widths) -> float:
        """Fraction of layer output elements kept: ``Σ out·cout/n_out / Σ out``."""
        total = sum(la.out_numel for la in self.layers) or 1
        return sum(la.out_numel * widths[la.name][1] / la.n_out for la in self.layers) / total

    def rest_at(self, activation_fraction: float,
                params: tuple[float, float, float] | None = None) -> float:
        _, beta, rest = params or self.params
        return rest * (beta + (1.0 - beta) * activation_fraction)

    def set_scale(self, scale: float) -> None:
        """Set ``λ`` (at most ``T_dense / Σ t(dense)``) and the rest that keeps the dense
        prediction equal to ``dense_ms``."""
        dense_layers = self.layers_ms(self.dense_widths())
        self.scale = min(scale, self.dense_ms / dense_layers) if dense_layers > 0 else scale
        self.rest_ms = max(0.0, self.dense_ms - self.scale * dense_layers)

    @property
    def params(self) -> tuple[float, float, float]:
        """The fitted ``(λ, β, rest)``: what :meth:`calibrate` changes."""
        return self.scale, self.beta, self.rest_ms

    def predict(self, widths: Widths,
                params: tuple[float, float, float] | None = None) -> float:
        """Predicted latency (ms) of the model with layer widths ``widths``; ``params``:
        predict with these ``(λ, β, rest)`` instead (e.g. :attr:`params` before
        calibration)."""
        params = params or self.params
        return params[0] * self.layers_ms(widths) + self.rest_at(
            self.activation_fraction(widths), params)

    def calibrate(self, widths: Widths, measured_ms: float) -> None:
        """Fit the model to a measured pruned model (``measured_ms`` on the scale of
        ``dense_ms``) and every earlier one.

        One measurement: ``λ`` alone, ``β`` kept, rest ≥ 0:
        ``λ = (M − D·c) / (L − L_dense·c)`` with ``c = β + (1 − β)·a``.
        Two or more: ``(λ, β)`` minimizing ``Σ_i ((pred_i − M_i) / M_i)²`` — for each ``β``
        on a grid of 51 values the prediction is linear in ``λ``
        (``pred_i = λ·(L_i − L_dense·c_i) + D·c_i``), so ``λ`` has a closed form
        ``λ = Σ u_i v_i / Σ u_i²`` with ``u_i = (L_i − L_dense·c_i)/M_i``,
        ``v_i = (M_i − D·c_i)/M_i`` (clipped to ``[0.05, D / L_dense]``).
        """
        self.observations.append((dict(widths), float(measured_ms)))
        dense_layers = self.layers_ms(self.dense_widths())
        if dense_layers <= 0:
            return
        if len(self.observations) == 1:
            c = self.beta + (1.0 - self.beta) * self.activation_fraction(widths)
            denom = self.layers_ms(widths) - dense_layers * c
            if denom >= 0:  # the plan saved nothing: nothing to fit
                return
            self.set_scale(max(0.05, (measured_ms - self.dense_ms * c) / denom))
            return
        self._fit_scale_and_beta(dense_layers)

    def _fit_scale_and_beta(self, dense_layers: float) -> None:
        obs = [(self.layers_ms(w), self.activation_fraction(w), m)
               for w, m in self.observations if m > 0]
        cap, best = self.dense_ms / dense_layers, None
        for k in range(51):
            beta = k / 50
            us, vs = [], []
            for layers, act, m in obs:
                c = beta + (1.0 - beta) * act
                us.append((layers - dense_layers * c) / m)
                vs.append((m - self.dense_ms * c) / m)
            uu = sum(u * u for u in us)
            lam = sum(u * v for u, v in zip(us, vs)) / uu if uu > 0 else 1.0
            lam = min(max(lam, 0.05), cap)
            err = sum((lam * u - v) ** 2 for u, v in zip(us, vs))
            if best is None or err < best[0] - 1e-15:
                best = (err, lam, beta)
        _, lam, self.beta = best
        self.set_scale(lam)

    def flush(self) -> None:
        """Write new timings to the disk cache."""
        if self._unsaved or not self.cache.path.exists():
            self.cache.save()
        self._unsaved = 0
