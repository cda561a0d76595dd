"""prunekit — make neural networks smaller and *measurably* faster.

Importing :mod:`prunekit` is cheap: it does not import optional heavy packages
(transformers, timm, cvxpy, onnx ...) and never touches CUDA. The public entry points
are loaded lazily on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it (imported on first use)
_LAZY = {
    "prune": "prunekit.api",
    "PruneResult": "prunekit.result",
    "SpeedupResult": "prunekit.result",
    "save": "prunekit.io",
    "load": "prunekit.io",
    "PlanError": "prunekit.io",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'prunekit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
