"""Registry of prunable structures: name -> :class:`Structure`.

A structure is one kind of removable unit (``"depth"``: residual blocks / layers;
channel and head groups live in :mod:`prunekit.graph`). ``prunekit.prune(...,
structures=[...])`` and recipes look structures up here by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Structure:
    """The verbs of one structure.

    Attributes
    ----------
    name : str
    find : callable
        ``find(model, example_inputs) -> list[unit]``.
    score : callable
        ``score(model, units, example_inputs, **options) -> {unit name: score}``, higher
        means keep.
    remove : callable
        ``remove(model, names, example_inputs) -> plan`` (in place, all or nothing).
    prune : callable
        ``prune(model, example_inputs, **options) -> result`` with ``.plan``: find,
        score and remove in one call.
    apply_plan : callable
        ``apply_plan(model, plan, example_inputs) -> plan``: replay a saved plan.
    groups : callable, optional
        ``groups(model, example_inputs, **options) -> list[prunekit.graph.Group]``: the
        structure's units as coupled groups (each unit one "channel" of a group, its
        members every parameter slice of the unit), so that
        :class:`prunekit.methods.ProximalGroupLasso` can drive whole units to exactly
        zero. None when the structure has no group form.
    """

    name: str
    find: Callable[..., Any]
    score: Callable[..., Any]
    remove: Callable[..., Any]
    prune: Callable[..., Any]
    apply_plan: Callable[..., Any]
    groups: Callable[..., Any] | None = None


_REGISTRY: dict[str, Structure] = {}


def register(structure: Structure) -> Structure:
    """Register ``structure`` under its name; ValueError if the name is taken."""
    if not isinstance(structure, Structure):
        raise TypeError(f"structure must be a Structure, got {type(structure).__name__}")
    if structure.name in _REGISTRY:
        raise ValueError(f"structure {structure.name!r} is already registered")
    _REGISTRY[structure.name] = structure
    return structure


def available() -> list[str]:
    """Names of the registered structures, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> Structure:
    """The structure registered as ``name``; ValueError listing the known ones if none."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown structure {name!r}; known: {', '.join(available())}")
    return _REGISTRY[name]
