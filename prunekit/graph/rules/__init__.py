"""Propagation rules, one per op kind, in a registry (see :mod:`.registry`)."""

from prunekit.graph.rules import (  # noqa: F401
    attention,
    contract,
    elementwise,
    layers,
    recurrent,
    shape,
)
from prunekit.graph.rules.registry import RULES, lookup, rule

__all__ = ["RULES", "lookup", "rule"]
