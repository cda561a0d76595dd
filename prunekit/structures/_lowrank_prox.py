"""Proximal training with the Frobenius + nuclear hybrid penalty on layer weights.

For each chosen layer the weight is read as a matrix ``W ∈ R^{out × (in·k·k)}`` (a conv
filter matrix; a Linear weight as is) and the penalty is

``Ω(W) = λ·w_l·((1 − ρ)‖W‖_F + ρ‖W‖_*)``,

whose prox (:func:`prunekit.sparsity.prox.prox_frob_nuclear`) soft-thresholds the singular
values by ``τρ`` (lowering the rank) and then shrinks them all by
``(1 − τ(1 − ρ)/‖σ‖₂)₊`` (``τ = lr·λ·w_l``). After each ``optimizer.step()`` the wrapper
applies this prox, so the small singular values become exactly zero and the layer can be
factored (:func:`prunekit.structures.lowrank.factorize`).

:class:`LowRankProx` is a :class:`~prunekit.sparsity.optim.ProxOptimizer` (the optimizer
protocol: ``step``, ``zero_grad``, ``param_groups``, ``state_dict``), so it composes with
:class:`prunekit.methods.ProximalGroupLasso` either way round:
``ProximalGroupLasso(LowRankProx(sgd, model, lam=...), model, groups, lam=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from prunekit.sparsity import FrobeniusNuclear
from prunekit.sparsity.optim import ProxOptimizer, prox_tensor

FACTORABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def factorable_layers(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` / ``nn.Conv*`` (``groups=1``) layers of ``model``."""
    return [n for n, m in model.named_modules()
            if isinstance(m, FACTORABLE) and getattr(m, "groups", 1) == 1]


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The weight as ``out × (in·∏k)`` (a view of the parameter's data)."""
    w = module.weight.detach()
    return w.reshape(w.shape[0], -1)


def _resolve_layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    names = factorable_layers(model)
    if layers is None:
        return names
    if isinstance(layers, str):
        raise TypeError("layers must be a list of module names, not a string")
    mods = dict(model.named_modules())
    for name in layers:
        if name not in mods:
            raise ValueError(f"layers: no module named {name!r} in the model")
        if name not in names:
            raise ValueError(f"layers: {name!r} is a {type(mods[name]).__name__}; low-rank "
                             "layers are nn.Linear or nn.Conv1d/2d/3d with groups=1")
    return list(layers)


class LowRankProx(ProxOptimizer):
    """Wrap ``optimizer``; after each step apply the Frobenius + nuclear prox per layer
    (a :class:`prunekit.sparsity.optim.ProxOptimizer` whose terms are
    :class:`prunekit.sparsity.FrobeniusNuclear` penalties on the layers' weight matrices).

    Parameters
    ----------
    optimizer
        A torch optimizer (or another wrapper with the optimizer protocol).
    model : nn.Module
        The model whose layers are penalized.
    lam : float
        λ ≥ 0.
    nuclear_ratio : float
        ρ in ``[0, 1]``: 1 is the pure nuclear norm (rank only), 0 the Frobenius norm
        (whole layer only).
    layers : list of str, optional
        Layer names (default: every ``nn.Linear`` / ``nn.Conv*`` with ``groups=1``).
    weights : {"ones", "sqrt"} or callable
        ``w_l`` from the matrix shape ``(m, n)``: 1, or ``sqrt(min(m, n))``.
    """

    def __init__(self, optimizer: Any, model: nn.Module, lam: float, nuclear_ratio: float = 0.5,
                 layers: Sequence[str] | None = None,
                 weights: str | Callable[[int, int], float] = "ones") -> None:
        super().__init__(optimizer, lam)
        if not 0.0 <= nuclear_ratio <= 1.0:
            raise ValueError(f"nuclear_ratio must be in [0, 1], got {nuclear_ratio}")
        table = {"ones": lambda m, n: 1.0, "sqrt": lambda m, n: math.sqrt(min(m, n))}
        weigh = table.get(weights) if isinstance(weights, str) else weights
        if weigh is None:
            raise ValueError(f"weights must be one of {tuple(table)} or a callable")
        self.model = model
        self.nuclear_ratio = float(nuclear_ratio)
        self.layers = _resolve_layers(model, layers)
        mods = dict(model.named_modules())
        self._modules = [(n, mods[n]) for n in self.layers]
        self._weight = {n: float(weigh(*weight_matrix(m).shape)) for n, m in self._modules}

    def prox(self) -> None:
        """``W ← prox_{lr·λ·w_l·Ω}(W)`` for every layer (one batched SVD per layer)."""
        for name, m in self._modules:
            step = self.lr(m.weight, f"layer {name!r}: its weight")
            penalty = FrobeniusNuclear(self.lam * self._weight[name], self.nuclear_ratio)
            prox_tensor(m.weight, penalty, step, (m.weight.shape[0], -1))

    def ranks(self, rtol: float = 1e-5) -> dict[str, int]:
        """``{layer: numerical rank}``: singular values above ``rtol·σ_max``."""
        return {n: numerical_rank(weight_matrix(m), rtol) for n, m in self._modules}


def numerical_rank(mat: torch.Tensor, rtol: float = 1e-5, atol: float = 0.0) -> int:
    """Number of singular values of ``mat`` above ``max(atol, rtol·σ_max)``."""
    s = torch.linalg.svdvals(mat.detach().to(torch.float64))
    if s.numel() == 0 or float(s[0]) == 0.0:
        return 0
    return int((s > max(atol, rtol * float(s[0]))).sum())
