"""Weights into a rebuilt model, all or nothing.

:func:`load_weights` reads the safetensors header first and compares every name and
shape with the model (tied weights: one stored name covers every alias) before any
tensor is assigned; tensors are then *assigned* (``param.data = loaded``; buffers
replaced in every holder), never copied into the model's own storage, so that
:func:`prunekit.surgery.transaction` can put the model back exactly as the factory built
it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunekit.surgery.validate import PlanError


def load_weights(model: nn.Module, path: Path, name: str, strict: bool = True) -> None:
    """Assign the tensors of safetensors file ``path`` (called ``name`` in messages) to
    ``model``; PlanError on a damaged file, on names missing or unexpected (``strict``) or
    on any shape that differs, before anything is assigned."""
    from safetensors import safe_open

    targets = model.state_dict(keep_vars=True)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
            keys = _match(targets, shapes, name, strict)
            loaded = {k: f.get_tensor(k) for k in keys}
    except PlanError:
        raise
    except Exception as err:  # SafetensorError, OSError ...: a damaged or foreign file
        raise PlanError(f"not a readable safetensors file ({type(err).__name__}: "
                        f"{str(err)[:200]})", file=name) from None
    _assign(model, targets, loaded)


def _match(targets: dict[str, Any], shapes: dict[str, tuple[int, ...]], name: str,
           strict: bool) -> list[str]:
    """The stored names to load (one per model tensor); PlanError on a mismatch."""
    covered: dict[int, str] = {}
    unexpected = []
    for k in shapes:
        t = targets.get(k)
        if not isinstance(t, torch.Tensor) or id(t) in covered:
            unexpected.append(k)  # not in the model, or a second copy of a tied tensor
            continue
        covered[id(t)] = k
        if tuple(t.shape) != shapes[k]:
            raise PlanError(f"shape {list(shapes[k])} differs from the model's "
                            f"{list(t.shape)} (after replaying the plan)", file=name,
                            field=k[:200])
    missing = [k for k, t in targets.items()
               if isinstance(t, torch.Tensor) and id(t) not in covered]
    if strict and (missing or unexpected):
        raise PlanError(f"weights do not match the model: missing {sorted(missing)[:5]}, "
                        f"unexpected {sorted(unexpected)[:5]}", file=name)
    return list(covered.values())


def _assign(model: nn.Module, targets: dict[str, Any], loaded: dict[str, torch.Tensor]) -> None:
    holders: dict[int, list[tuple[nn.Module, str]]] = {}
    for m in model.modules():
        for attr, b in m._buffers.items():
            if b is not None:
                holders.setdefault(id(b), []).append((m, attr))
    for k, value in loaded.items():
        t = targets[k]
        # a fresh tensor laid out like the model's (what load_state_dict's copy_ gives;
        # the file's own memory may be unaligned, which changes kernels' rounding)
        new = torch.empty_like(t.detach()).copy_(value)
        if isinstance(t, nn.Parameter):
            t.data = new
        else:
            for m, attr in holders.get(id(t), []):
                m._buffers[attr] = new
