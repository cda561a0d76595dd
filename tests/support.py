"""Shared test helpers (``tests/`` is on the pytest path: ``from support import ...``).

"A failed prune leaves the model exactly as it was" is checked all over the suite: copy the
state_dict before, compare bit for bit after.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn


def state_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter and buffer, by name."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Same names, shapes, dtypes and values (bit for bit)."""
    return a.keys() == b.keys() and all(
        a[k].shape == b[k].shape and a[k].dtype == b[k].dtype and torch.equal(a[k], b[k])
        for k in a)


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """:func:`same_state` as an assertion that names the first tensor that differs."""
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))[:5]
    for k in a:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: CI runs two workers on two cores, and spinning OpenMP
    threads on an oversubscribed machine only burn CPU time. A directory opts in with
    ``from support import one_thread  # noqa: F401`` in its conftest.py."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
