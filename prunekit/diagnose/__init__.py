"""Redundancy and collapse diagnostics: similarity, effective rank, dead channels, λ sweeps.

>>> from prunekit.diagnose import diagnose, lambda_sweep
>>> d = diagnose(model, calibration_batches)
>>> print(d.to_json()); rich.print(d.table())

Names are loaded on first use, so importing this package pulls in neither matplotlib nor
the graph/methods layers.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ChannelMoments": "prunekit.diagnose.moments",
    "Diagnosis": "prunekit.diagnose.records",
    "LayerRecord": "prunekit.diagnose.records",
    "SimilaritySummary": "prunekit.diagnose.similarity",
    "SweepRecord": "prunekit.diagnose.sweep",
    "SweepResult": "prunekit.diagnose.sweep",
    "correlation": "prunekit.diagnose.similarity",
    "cosine_similarity": "prunekit.diagnose.similarity",
    "dead_fraction": "prunekit.diagnose.dead",
    "diagnose": "prunekit.diagnose.core",
    "diagnosis_html": "prunekit.diagnose.html",
    "effective_rank": "prunekit.diagnose.rank",
    "energy_rank": "prunekit.diagnose.rank",
    "erank_from_singular_values": "prunekit.diagnose.rank",
    "lambda_sweep": "prunekit.diagnose.sweep",
    "plot_diagnosis": "prunekit.diagnose.plots",
    "plot_sweep": "prunekit.diagnose.plots",
    "summarize": "prunekit.diagnose.similarity",
    "sweep_html": "prunekit.diagnose.html",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'prunekit.diagnose' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
