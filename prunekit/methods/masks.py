"""Unstructured masks on :mod:`torch.nn.utils.parametrize`.

A masked weight is ``w_eff = w ⊙ m`` with ``m`` a ``{0,1}`` buffer. The original
``nn.Parameter`` object is kept (it becomes ``module.parametrizations.<name>.original``),
so optimizers built before masking keep working. Masks only shrink: applying a new mask
intersects it with the old one. :func:`bake` writes ``w ⊙ m`` into the parameter and
removes the parametrization, again keeping the parameter object.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize


class Mask(nn.Module):
    """Parametrization ``w ↦ w ⊙ mask`` with the mask stored as a buffer (saved in state_dict)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().clone().to(torch.bool))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * self.mask.to(w.dtype)


def _split(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, leaf = name.rpartition(".")
    try:
        module = model.get_submodule(module_name) if module_name else model
    except AttributeError as err:
        raise ValueError(f"no module {module_name!r} in the model (from {name!r})") from err
    if not hasattr(module, leaf):
        raise ValueError(f"{type(module).__name__} {module_name!r} has no parameter {leaf!r}")
    return module, leaf


def _mask_of(module: nn.Module, leaf: str) -> Mask | None:
    if not parametrize.is_parametrized(module, leaf):
        return None
    found = [p for p in module.parametrizations[leaf] if isinstance(p, Mask)]
    return found[0] if found else None


def prunable_weights(model: nn.Module) -> list[str]:
    """Names of the weights of every Linear and Conv layer (the usual unstructured targets)."""
    kinds = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
    return [f"{n}.weight" if n else "weight" for n, m in model.named_modules()
            if isinstance(m, kinds)]


def dense_weight(model: nn.Module, name: str) -> torch.Tensor:
    """The underlying (unmasked) parameter ``name``, whether or not it is masked."""
    module, leaf = _split(model, name)
    if parametrize.is_parametrized(module, leaf):
        return module.parametrizations[leaf].original
    return getattr(module, leaf)


def named_dense_parameters(model: nn.Module):
    """``(plain name, parameter)`` pairs; a masked weight appears under its plain name
    (``"0.weight"``, not ``"0.parametrizations.weight.original"``)."""
    for name, p in model.named_parameters():
        yield name.replace("parametrizations.", "").replace(".original", ""), p


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Mask the named parameters in place; an existing mask is intersected (masks only shrink).

    Returns ``model`` (modified in place) for chaining. Raises ValueError on unknown names
    or shape mismatch, before touching anything.
    """
    plan = []
    for name, mask in masks.items():
        module, leaf = _split(model, name)
        weight = dense_weight(model, name)
        if tuple(mask.shape) != tuple(weight.shape):
            raise ValueError(f"mask for {name!r} has shape {tuple(mask.shape)}, parameter has "
                             f"{tuple(weight.shape)}")
        plan.append((module, leaf, mask.to(weight.device, torch.bool)))
    for module, leaf, mask in plan:
        existing = _mask_of(module, leaf)
        if existing is None:
            parametrize.register_parametrization(module, leaf, Mask(mask), unsafe=True)
        else:
            existing.mask &= mask
    return model


def get_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """``{parameter name: bool mask}`` for every masked parameter."""
    out = {}
    for mod_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for leaf in module.parametrizations:
            mask = _mask_of(module, leaf)
            if mask is not None:
                out[f"{mod_name}.{leaf}" if mod_name else leaf] = mask.mask.clone()
    return out


def _remove_masks(model: nn.Module, leave_parametrized: bool) -> nn.Module:
    for _, module in list(model.named_modules()):
        if not parametrize.is_parametrized(module):
            continue
        for leaf in list(module.parametrizations):
            if _mask_of(module, leaf) is not None:
                parametrize.remove_parametrizations(module, leaf, leave_parametrized)
    return model


def bake(model: nn.Module) -> nn.Module:
    """Make masks permanent: write ``w ⊙ m`` into each parameter and drop the parametrization.

    The parameter object is preserved (``Parameter.set_``), so an optimizer keeps working.
    """
    return _remove_masks(model, leave_parametrized=True)


def strip_masks(model: nn.Module) -> nn.Module:
    """Remove every mask and restore the dense (unmasked) values, keeping parameter objects."""
    return _remove_masks(model, leave_parametrized=False)


def clone_model(model: nn.Module) -> nn.Module:
    """A deep copy that is safe to bake or strip independently of ``model``.

    ``copy.deepcopy`` of a parametrized module shares its generated class with the
    original, and removing a parametrization from one deletes the property from both;
    here the copy is taken without masks and the masks are put back on both.
    """
    import copy

    masks = get_masks(model)
    if not masks:
        return copy.deepcopy(model)
    strip_masks(model)
    try:
        clone = copy.deepcopy(model)
    finally:
        apply_masks(model, masks)
    return apply_masks(clone, masks)


def sparsity_of(model: nn.Module, names: Iterable[str] | None = None) -> float:
    """Fraction of exactly-zero entries over the effective (masked) weights ``names``."""
    names = list(names) if names is not None else prunable_weights(model)
    zeros = total = 0
    with torch.no_grad():
        for name in names:
            module, leaf = _split(model, name)
            w = getattr(module, leaf)
            zeros += int((w == 0).sum())
            total += w.numel()
    return zeros / max(total, 1)
