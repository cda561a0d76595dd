"""Stand-ins for the modules of a removed branch (they hold no parameters).

* :class:`EmptyBranch` replaces a branch's *head* (the module whose output is the
  concat / sum term): for a concat it returns a tensor with **0 channels** of the shape
  the other branches have, so ``torch.cat`` is unchanged apart from the missing channels;
  for a sum it returns a scalar ``0`` (``a + 0 + c``).
* :class:`PassThrough` replaces the branch's other parameter-holding modules (they still
  get called by the parent's ``forward``) and returns its first input unchanged, at no
  cost.

The spatial size of a 0-channel concat term follows ``out = ⌊(in + 2p − k) / s⌋ + 1``
per spatial dim; ``(k, s, p)`` is fitted from the first call (the forward check right
after the removal), so that the term keeps matching other input sizes too, and stored in
the plan for replay.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

Rule = list[list[int]]  # per spatial dim: [k, s, p]
_KERNELS = (1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10)  # odd windows first: what layers use


def fit_rule(size_in: tuple[int, ...] | list[tuple[int, ...]],
             size_out: tuple[int, ...] | list[tuple[int, ...]]) -> Rule:
    """Per-dim ``[k, s, p]`` with ``⌊(in + 2p − k)/s⌋ + 1 = out``: smallest stride, then
    odd windows first, then smallest padding (identity when the size is kept; a 3×3
    stride-2 window for the usual reduction branch).

    Several ``(in, out)`` pairs (lists of sizes, e.g. from probing the branch module at
    several input sizes) pin the rule down where one pair is ambiguous.
    Raises ValueError when no small window/stride/padding maps ``in`` to ``out``.
    """
    ins = size_in if isinstance(size_in, list) else [size_in]
    outs = size_out if isinstance(size_out, list) else [size_out]
    if len(ins) != len(outs) or any(len(a) != len(b) for a, b in zip(ins, outs, strict=True)):
        raise ValueError(f"cannot map spatial size {size_in} to {size_out}")
    rule = []
    for d in range(len(ins[0])):
        pairs = [(a[d], b[d]) for a, b in zip(ins, outs, strict=True)]
        found = next(([k, s, p] for s in range(1, 9) for k in _KERNELS for p in range(0, 6)
                      if all((i + 2 * p - k) // s + 1 == o for i, o in pairs)), None)
        if found is None:
            raise ValueError(f"cannot map spatial size {size_in} to {size_out}")
        rule.append(found)
    return rule


def apply_rule(size_in: tuple[int, ...], rule: Rule) -> tuple[int, ...]:
    """Spatial output size of ``rule`` for an input of ``size_in``."""
    return tuple((i + 2 * p - k) // s + 1 for i, (k, s, p) in zip(size_in, rule, strict=True))


class EmptyBranch(nn.Module):
    """What is left of a removed branch: a 0-channel tensor (concat) or a zero (sum).

    Parameters
    ----------
    mode : {"cat", "sum"}
    target : tuple of int
        Spatial output size seen when the branch was removed (concat only).
    rule : list of [k, s, p], optional
        Spatial size rule; fitted on the first call when None.
    """

    def __init__(self, mode: str, target: tuple[int, ...] = (),
                 rule: Rule | None = None) -> None:
        super().__init__()
        if mode not in ("cat", "sum"):
            raise ValueError(f"mode must be 'cat' or 'sum', got {mode!r}")
        self.mode = mode
        self.target = tuple(target)
        self.rule = rule
        self.probe: tuple[int, ...] | None = None  # while probing: output this spatial size
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        t = x if isinstance(x, torch.Tensor) else next(
            v for v in (*x, *args) if isinstance(v, torch.Tensor))
        if self.mode == "sum":
            return t.new_zeros(())
        spatial = tuple(t.shape[2:])
        if self.probe is not None:
            self.seen.append(spatial)
            return t.new_zeros((t.shape[0], 0, *self.probe))
        if self.rule is None:
            self.rule = fit_rule(spatial, self.target)
        return t.new_zeros((t.shape[0], 0, *apply_rule(spatial, self.rule)))

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, rule={self.rule}"


class PassThrough(nn.Module):
    """Returns its first input unchanged (a non-head module of a removed branch)."""

    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        return x
