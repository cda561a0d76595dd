"""Seeding: one call seeds Python, NumPy and torch; named generators for data draws."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_all(seed: int) -> dict[str, Any]:
    """Seed ``random``, NumPy's legacy global state and torch (CPU and CUDA) with ``seed``;
    returns what was seeded (recorded in the result file)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return {"seed": seed, "seeded": ["random", "numpy", "torch"]}


def generator(seed: int) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` seeded with ``seed`` (inputs, permutations)."""
    return torch.Generator().manual_seed(seed)


def rng(seed: int | list[int]) -> np.random.Generator:
    """A NumPy ``Generator`` (``seed`` may be a list: one stream per (seed, cell) pair)."""
    return np.random.default_rng(seed)
