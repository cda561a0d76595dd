"""Max pooling without the index tensor: the same outputs, measured 1.3–7× faster on CPU.

On CPU, ``nn.MaxPool2d`` runs ``max_pool2d_with_indices`` even at inference (an int64 index
for every output that nobody reads, one window at a time), measured 1.3–7× slower than the
same maxima taken element-wise. In LeNet-5 at batch 256 that made pooling
42 % of the dense model's time and about half of a channel-pruned one's: work that has no
MACs and shrinks only with the channel count, so it capped the realized efficiency
``ρ = speedup / MAC reduction`` of pruning (``docs/methods.md``). A window maximum is
separable: over the (``−∞``-padded) input, first along the width, then along the height,

    m[..., r, j] = max_{b < k_w} x[..., r, s_w·j + b],
    y[..., i, j] = max_{a < k_h} m[..., s_h·i + a, j],

each an element-wise ``torch.maximum`` of ``k − 1`` strided views (vectorized, no indices;
the height pass reads whole rows). Measured here
(2-core EPYC VM, torch 2.14, 1 thread): 2×2 / 2 on (256, 20, 24, 24) 22.1 → 3.5 ms and on
(256, 50, 8, 8) 6.7 → 1.0 ms; a ResNet stem's 3×3 / 2 (padding 1) 8.4 → 2.2 ms at batch 1,
277 → 214 ms at batch 32 (``benchmarks/pooling_speed.py`` re-times it on your machine,
beside ``nn.MaxPool2d``).

:func:`replace_max_pool` swaps each eligible ``nn.MaxPool2d`` (dilation 1, no
``ceil_mode``, no ``return_indices``) that it *measures* faster on the model's own inputs
for :class:`StridedMaxPool2d` (every shape tried here was faster, but a device where
it is not keeps its ``nn.MaxPool2d``), which gives
the same values (NaN propagates as in ``max_pool2d``); others are left alone and listed.
It is a deployment step, like folding BatchNorm: apply it to the dense and the pruned model
alike before timing either. Keep ``nn.MaxPool2d`` for training: on ties (zeros after a
ReLU) ``torch.maximum`` shares the gradient between the tied inputs, where ``max_pool2d``
gives it all to the first.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.modules.utils import _pair

__all__ = ["StridedMaxPool2d", "replace_max_pool"]


class StridedMaxPool2d(nn.Module):
    """``nn.MaxPool2d(kernel_size, stride, padding)`` (dilation 1, floor mode) as the
    element-wise maximum of strided views (module docstring); no parameters or buffers.
    """

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)
        kh, kw = self.kernel_size
        if min(*self.kernel_size, *self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"kernel_size and stride must be >= 1 and padding >= 0, got "
                             f"{self.kernel_size}, {self.stride}, {self.padding}")
        if self.padding[0] > kh // 2 or self.padding[1] > kw // 2:
            raise ValueError(f"padding {self.padding} must be at most half the kernel "
                             f"{self.kernel_size} (as for nn.MaxPool2d)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (3, 4):
            raise ValueError(f"expected a 3-D or 4-D input, got shape {tuple(x.shape)}")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if ph or pw:
            x = nn.functional.pad(x, (pw, pw, ph, ph), value=float("-inf"))
        h, w = x.shape[-2], x.shape[-1]
        ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"input {tuple(x.shape)} is smaller than the kernel "
                             f"{self.kernel_size}")
        cols = [x[..., b: b + sw * (wo - 1) + 1: sw] for b in range(kw)]  # along W first
        m = cols[0].clone() if kw == 1 else _maximum(cols)
        rows = [m[..., a: a + sh * (ho - 1) + 1: sh, :] for a in range(kh)]  # then along H
        return rows[0].contiguous() if kh == 1 else _maximum(rows)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _maximum(views: list[torch.Tensor]) -> torch.Tensor:
    out = torch.maximum(views[0], views[1])
    for v in views[2:]:
        out = torch.maximum(out, v)
    return out


def _eligible(m: nn.Module) -> str | None:
    """Why ``m`` cannot be replaced, or None when it can."""
    if m.return_indices:
        return "return_indices=True"
    if m.ceil_mode:
        return "ceil_mode=True"
    if _pair(m.dilation) != (1, 1):
        return f"dilation={m.dilation}"
    return None


def replace_max_pool(model: nn.Module, example_inputs: Any, threads: int | None = None,
                     repeats: int = 7, min_gain: float = 0.05) -> dict[str, Any]:
    """Replace, in place, each eligible ``nn.MaxPool2d`` of ``model`` by an equivalent
    :class:`StridedMaxPool2d` where that is *measured* faster: one forward pass on
    ``example_inputs`` records every pool's input, then each pool is timed both ways on
    that input (the fastest of ``repeats`` runs, on its device, ``threads`` CPU threads)
    and replaced when the strided form takes at most ``1 − min_gain`` of the time (on
    this project's CPU 1.3–7× faster for every shape tried; an earlier, non-separable
    form was 2× *slower* on a 3×3 / 3 pool, which is why each pool is measured).

    Returns ``{"replaced": [names], "kept": ["name (ms vs ms)"], "skipped": ["name
    (why)"], "ms": {name: [nn.MaxPool2d ms, strided ms]}}``. Pooling called functionally
    inside ``forward`` is not seen; a pool the example inputs do not reach is skipped."""
    from prunekit.inputs import call_model, inference_mode_of

    if not 0.0 <= min_gain < 1.0:
        raise ValueError(f"min_gain must be in [0, 1), got {min_gain!r}")
    pools = {name: m for name, m in model.named_modules() if type(m) is nn.MaxPool2d}
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, name=name: seen.setdefault(name, args[0].detach()))
        for name, m in pools.items() if _eligible(m) is None]
    try:
        with inference_mode_of(model), torch.no_grad():
            call_model(model, example_inputs)
    finally:
        for h in hooks:
            h.remove()
    report: dict[str, Any] = {"replaced": [], "kept": [], "skipped": [], "ms": {}}
    swaps: list[tuple[nn.Module, nn.Module]] = []
    for name, pool in pools.items():
        why = _eligible(pool) or (None if name in seen else "not reached by the inputs") \
            or ("the model itself (wrap it in a module)" if pool is model else None)
        if why:
            report["skipped"].append(f"{name} ({why})")
            continue
        x = seen[name]
        fast = StridedMaxPool2d(pool.kernel_size, pool.stride, pool.padding)
        old, new = (_min_ms(m, x, threads, repeats) for m in (pool, fast))
        report["ms"][name] = [old, new]
        if new <= (1.0 - min_gain) * old:
            swaps.append((pool, fast))
            report["replaced"].append(name)
        else:
            report["kept"].append(f"{name} ({old:.3f} ms vs {new:.3f} ms strided)")
    for pool, fast in swaps:  # only after every timing succeeded: all or nothing
        _swap(model, pool, fast)
    return report


def _min_ms(module: nn.Module, x: torch.Tensor, threads: int | None, repeats: int) -> float:
    """The fastest of ``repeats`` runs of ``module`` on ``x`` (on ``x``'s device), in ms."""
    from prunekit.measure import latency

    return latency(module, x, device=str(x.device), threads=threads, warmup=2,
                   repeats=repeats).min_ms


def _swap(model: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Put ``new`` wherever ``old`` is a child (a module may be registered twice)."""
    paths = [p for p, m in model.named_modules(remove_duplicate=False) if m is old and p]
    for path in paths:
        parent, _, child = path.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
