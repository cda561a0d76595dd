"""Spatial size rules of removed concat branches, from probing the branch module.

A 0-channel concat term must have the spatial size of the other terms for *any* input
size, not only the traced one. One ``(in, out)`` pair is ambiguous at small sizes
(6 → 2 is a 5-window or a stride of 2), so the branch module is run alone, before and
after the swap, on zero inputs of a few sizes around the traced one; every size that
runs gives one more pair for :func:`prunekit.structures._branch_modules.fit_rule`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from prunekit.structures._branch_modules import EmptyBranch, fit_rule

_OFFSETS = (0, 1, 2, 3, 5, 8, 13)


def _probe_inputs(in_shape: tuple[int, ...]) -> list[torch.Tensor]:
    c, spatial = in_shape[1], in_shape[2:]
    return [torch.zeros(1, c, *(s + o for s in spatial)) for o in _OFFSETS]


def _run(module: nn.Module, x: torch.Tensor) -> bool:
    try:
        with torch.no_grad():
            module(x)
    except Exception:  # noqa: BLE001 - a size the module does not accept is just skipped
        return False
    return True


def head_sizes(module: nn.Module, heads: dict[str, nn.Module],
               in_shape: tuple[int, ...]) -> dict[int, dict[str, tuple[int, ...]]]:
    """``{probe: {head path: output spatial size}}`` of the original branch module."""
    seen: dict[int, dict[str, tuple[int, ...]]] = {}
    current = [0]
    handles = []
    for path, head in heads.items():
        def hook(_m: nn.Module, _a: Any, out: Any, path: str = path) -> None:
            if isinstance(out, torch.Tensor):
                seen.setdefault(current[0], {})[path] = tuple(out.shape[2:])
        handles.append(head.register_forward_hook(hook))
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        for k, x in enumerate(_probe_inputs(in_shape)):
            current[0] = k
            if not _run(module, x):
                seen.pop(k, None)
    finally:
        for h in handles:
            h.remove()
        for m, flag in modes.items():
            m.training = flag
    return {k: v for k, v in seen.items() if len(v) == len(heads)}


def fit_rules(module: nn.Module, empties: dict[str, EmptyBranch], in_shape: tuple[int, ...],
              sizes: dict[int, dict[str, tuple[int, ...]]]) -> None:
    """Set ``rule`` of every EmptyBranch in ``empties`` (swapped into ``module``) from the
    probe sizes the original heads produced."""
    pairs: dict[str, tuple[list, list]] = {p: ([], []) for p in empties}
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        for k, x in enumerate(_probe_inputs(in_shape)):
            if k not in sizes:
                continue
            for path, e in empties.items():
                e.probe, e.seen = sizes[k][path], []
            if _run(module, x):
                for path, e in empties.items():
                    if e.seen:
                        pairs[path][0].append(e.seen[0])
                        pairs[path][1].append(sizes[k][path])
    finally:
        for e in empties.values():
            e.probe, e.seen = None, []
        for m, flag in modes.items():
            m.training = flag
    for path, e in empties.items():
        ins, outs = pairs[path]
        if ins:
            e.rule = fit_rule(ins, outs)
