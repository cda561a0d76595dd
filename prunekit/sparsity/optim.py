"""Proximal stochastic gradient on any torch optimizer: the one wrapper every proximal
training method in prunekit is.

``ProxOptimizer(optimizer)`` speaks the optimizer protocol (``step``, ``zero_grad``,
``param_groups``, ``state_dict``/``load_state_dict``), so it drops into any training loop
and composes with another wrapper either way round. Its ``step`` is the inner step
(the gradient step on the smooth loss), then :meth:`ProxOptimizer.prox` — the proximal step
of the penalty with step size ``lr`` — then each hook (bookkeeping, budget control).
Subclasses say what the prox is; :func:`prox_tensor` applies a penalty of this package
(``L1``, ``NuclearNorm``, ``FrobeniusNuclear``, ...) to a parameter in place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from prunekit.sparsity.penalties import _Penalty

Hook = Callable[["ProxOptimizer"], None]

__all__ = ["Hook", "ProxOptimizer", "prox_tensor"]


class ProxOptimizer:
    """Wrap ``optimizer``; after each of its steps apply the prox, then the hooks.

    ``hooks`` run in order after every prox (e.g. recording which groups reached zero,
    updating λ toward a budget). ``lam`` is the penalty weight; :meth:`lr` reads the step
    size the inner optimizer uses for a parameter.
    """

    def __init__(self, optimizer: Any, lam: float) -> None:
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.optimizer = optimizer
        self.lam = float(lam)
        self.hooks: list[Hook] = []
        self.steps = 0
        self._lr_of = {id(p): pg for pg in optimizer.param_groups for p in pg["params"]}

    # -- the optimizer protocol -------------------------------------------------------
    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        """Inner optimizer state, λ and the step counter (for checkpoints)."""
        return {"optimizer": self.optimizer.state_dict(), "lam": self.lam, "step": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.lam = float(state["lam"])
        self.steps = int(state.get("step", self.steps))

    def step(self, closure: Callable | None = None) -> Any:
        """The inner ``step``, then :meth:`prox`, then every hook."""
        loss = self.optimizer.step(closure)
        self.steps += 1
        self.prox()
        for hook in self.hooks:
            hook(self)
        return loss

    # -- what subclasses provide ------------------------------------------------------
    def prox(self) -> None:
        """Apply the proximal step with the current step sizes and λ (in place)."""
        raise NotImplementedError

    def lr(self, param: torch.Tensor, name: str = "") -> float:
        """The step size the wrapped optimizer uses for ``param`` (ValueError if none)."""
        pg = self._lr_of.get(id(param))
        if pg is None:
            raise ValueError(f"{name or 'a penalized tensor'!s} is not optimized by the "
                             "wrapped optimizer")
        return float(pg["lr"])


@torch.no_grad()
def prox_tensor(param: torch.Tensor, penalty: _Penalty, step: float,
                shape: tuple[int, ...] | None = None) -> None:
    """``param ← prox_{step·penalty}(param)`` in place; ``shape`` views it first (a conv
    filter bank as an ``out × (in·k·k)`` matrix for a spectral penalty)."""
    data = param.data if shape is None else param.data.reshape(shape)
    param.data.copy_(penalty.prox(data, step).reshape(param.shape))
