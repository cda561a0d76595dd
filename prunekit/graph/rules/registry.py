"""Registry of propagation rules: one function per op kind, looked up by op name.

A rule is ``rule(st, func, args, kwargs, out) -> None``: it reads the labels of the op's
tensor arguments from the trace state ``st``, unions atoms that the op couples and sets
the labels of ``out``. Op names come from :func:`torch.overrides.resolve_name`
(``"torch.nn.functional.conv2d"``, ``"torch.Tensor.view"``); a rule is found by the full
name first, then by the short name (in-place ``add_``/``__iadd__`` map to ``add``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from torch.overrides import resolve_name

Rule = Callable[[Any, Any, tuple, dict, Any], None]

RULES: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    """Register ``fn`` under every name in ``names`` (full or short op names)."""

    def decorate(fn: Rule) -> Rule:
        for name in names:
            if name in RULES:
                raise ValueError(f"propagation rule {name!r} registered twice")
            RULES[name] = fn
        return fn

    return decorate


@lru_cache(maxsize=4096)
def op_name(func: Any) -> str:
    """Full dotted name of a torch function (best effort, never raises)."""
    try:
        name = resolve_name(func)
    except Exception:  # noqa: BLE001 - exotic callables
        name = None
    return name or getattr(func, "__qualname__", None) or repr(func)


def short_name(full: str) -> str:
    """``torch.Tensor.add_`` -> ``add``; ``torch.Tensor.__iadd__`` -> ``add``;
    ``torch.Tensor.T.__get__`` -> ``T``."""
    parts = full.split(".")
    last = parts[-1]
    if last == "__get__" and len(parts) > 1:
        return parts[-2]
    if last.startswith("__") and last.endswith("__"):
        core = last[2:-2]
        for prefix in ("i", "r"):
            if core.startswith(prefix) and f"__{core[1:]}__" in RULES:
                return f"__{core[1:]}__"
        return last
    if last.endswith("_") and not last.endswith("__"):
        return last[:-1]
    return last


def lookup(func: Any) -> tuple[str, Rule | None]:
    """``(name, rule)`` for ``func``; rule is None when no rule exists (a barrier)."""
    full = op_name(func)
    found = RULES.get(full)
    if found is None:
        found = RULES.get(short_name(full))
    return full, found
