"""Things that depend on how many blocks a container holds, fixed after a removal.

Each fixer is a function ``fix(model, removal) -> bool`` kept in a registry (no type
chains): it updates one kind of dependent in place (module attributes, the config) and says
whether it changed anything. Undoing is not its job: a removal runs inside
:func:`prunekit.surgery.transaction`, which puts every module attribute and config back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

Fixer = Callable[[nn.Module, "Removal"], bool]
_FIXERS: dict[str, Fixer] = {}


@dataclass(frozen=True)
class Removal:
    """One container after a cut: its name, the owning module path, length before, and
    ``kept[i]`` = the original position of the block now at position ``i``."""

    container: str
    old_len: int
    kept: tuple[int, ...]

    @property
    def index_map(self) -> dict[int, int]:
        """Original position -> new position, for the kept blocks."""
        return {old: new for new, old in enumerate(self.kept)}


def register_fixer(name: str) -> Callable[[Fixer], Fixer]:
    """Register a dependent fixer under ``name`` (ValueError if taken)."""
    if name in _FIXERS:
        raise ValueError(f"depth fixer {name!r} is already registered")

    def decorator(fn: Fixer) -> Fixer:
        _FIXERS[name] = fn
        return fn

    return decorator


def apply_fixers(model: nn.Module, removals: list[Removal]) -> list[str]:
    """Run every registered fixer for every removal; notes of what changed. Call it
    inside a transaction: a fixer that fails leaves earlier changes for it to undo."""
    notes: list[str] = []
    for removal in removals:
        for name, fixer in _FIXERS.items():
            if fixer(model, removal):
                notes.append(f"{name}: {removal.container}")
    return notes


def _set_attrs(changes: list[tuple[Any, str, Any]]) -> bool:
    """Apply ``(obj, attr, new)`` changes; whether there were any."""
    for obj, attr, new in changes:
        setattr(obj, attr, new)
    return bool(changes)


@register_fixer("layer_idx")
def fix_layer_idx(model: nn.Module, removal: Removal) -> bool:
    """Renumber ``layer_idx`` of every module inside the kept blocks (Hugging Face
    attentions index the KV cache with it, so it must be 0..n-1 in the new order)."""
    container = model.get_submodule(removal.container)
    index_map = removal.index_map
    changes = []
    for block in container.children():
        for module in block.modules():
            idx = getattr(module, "layer_idx", None)
            if isinstance(idx, int) and idx in index_map and index_map[idx] != idx:
                changes.append((module, "layer_idx", index_map[idx]))
    return _set_attrs(changes)


def owner_config(model: nn.Module, container: str) -> Any | None:
    """The ``config`` of the nearest ancestor of ``container`` that has one with a
    ``num_hidden_layers`` (Hugging Face style), or None."""
    parts = container.split(".") if container else []
    for depth in range(len(parts), -1, -1):
        module = model.get_submodule(".".join(parts[:depth]))
        config = getattr(module, "config", None)
        if config is not None and _num_layers(config) is not None:
            return config
    return None


def _num_layers(config: Any) -> int | None:
    try:
        n = config.num_hidden_layers
    except Exception:  # a config without the field (or an ambiguous heterogeneous one)
        return None
    return n if isinstance(n, int) else None


@register_fixer("hf_config")
def fix_hf_config(model: nn.Module, removal: Removal) -> bool:
    """Update ``num_hidden_layers`` (and per-layer lists: ``layer_types``, heterogeneous
    ``per_layer_config``) of the config that owns a layer list of that length."""
    config = owner_config(model, removal.container)
    if config is None or _num_layers(config) != removal.old_len:
        return False
    changes: list[tuple[Any, str, Any]] = [(config, "num_hidden_layers", len(removal.kept))]
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, list | tuple) and len(layer_types) == removal.old_len:
        changes.append((config, "layer_types", [layer_types[i] for i in removal.kept]))
    _set_attrs(changes)
    _fix_heterogeneous(config, removal)
    return True


def _fix_heterogeneous(config: Any, removal: Removal) -> None:
    """Re-key a heterogeneous config's per-layer overrides to the new layer numbers
    (called after ``num_hidden_layers`` was set, which the overrides are checked against)."""
    spec = config.__dict__.get("_heterogeneity_spec")
    if spec is None:
        return
    overrides = getattr(spec, "per_layer_overrides", {})
    new = {new_i: dict(overrides[old_i]) for new_i, old_i in enumerate(removal.kept)
           if old_i in overrides}
    config.__dict__.pop("_heterogeneity_spec")
    if new:
        config.per_layer_config = new
