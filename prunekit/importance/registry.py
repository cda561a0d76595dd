"""Registry of importance criteria: name -> scoring function.

A criterion is a plain function ``fn(model, group, ctx) -> Tensor`` of shape
``(group.size,)`` where a higher score means *keep*. Options are keyword-only arguments
of the function and are bound with :func:`get` (``get("l2", normalize_members=True)``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from prunekit.importance.types import ImportanceFn

_REGISTRY: dict[str, ImportanceFn] = {}


def register(name: str) -> Callable[[ImportanceFn], ImportanceFn]:
    """Decorator registering ``fn`` under ``name``.

    Raises
    ------
    ValueError
        If ``name`` is empty or already registered (criteria are never silently replaced).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"importance {name!r} is already registered")

    def decorator(fn: ImportanceFn) -> ImportanceFn:
        if not callable(fn):
            raise TypeError(f"importance {name!r} must be callable, got {type(fn).__name__}")
        _REGISTRY[name] = fn
        return fn

    return decorator


def available() -> list[str]:
    """Names of all registered criteria, sorted."""
    return sorted(_REGISTRY)


def get(name: str, **options: Any) -> ImportanceFn:
    """The criterion registered as ``name``, with keyword ``options`` bound.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the known names) or an option is not a
        keyword argument of the criterion.
    """
    fn = _REGISTRY.get(name) if isinstance(name, str) else None
    if fn is None:
        raise ValueError(f"unknown importance {name!r}; known: {', '.join(available())}")
    if not options:
        return fn
    accepted = _keyword_options(fn)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(
            f"importance {name!r} has no option(s) {unknown}; options: {sorted(accepted)}"
        )
    return functools.partial(fn, **options)


def resolve(importance: str | ImportanceFn | Mapping[str, float]) -> ImportanceFn:
    """Turn what a user passes as ``importance=`` into a scoring function.

    A string is looked up with :func:`get`, a mapping of names to weights becomes
    :func:`~prunekit.importance.combine.combine` of them, a callable is used as is.
    """
    if isinstance(importance, str):
        return get(importance)
    if isinstance(importance, Mapping):
        from prunekit.importance.combine import combine

        return combine(importance)
    if callable(importance):
        return importance
    raise TypeError(
        "importance must be a name, a mapping of names to weights or a callable, "
        f"got {type(importance).__name__}"
    )


def _keyword_options(fn: ImportanceFn) -> set[str]:
    params = inspect.signature(fn).parameters.values()
    return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}
