"""Propagation rules, one per op kind, in a registry (see :mod:`.registry`)."""

from prunekit.graph.rules import attention, contract, elementwise, layers, shape  # noqa: F401
from prunekit.graph.rules.registry import RULES, lookup, rule

__all__ = ["RULES", "lookup", "rule"]
