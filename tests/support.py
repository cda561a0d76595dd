"""Shared test helpers (``tests/`` is on the pytest path: ``from support import ...``).

"A failed prune leaves the model exactly as it was" is checked all over the suite: copy the
state_dict before, compare bit for bit after. The benchmark smoke tests import the scripts
under ``benchmarks/`` with :func:`load_benchmark`.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as module ``bench_<name>`` (registered in
    ``sys.modules``: dataclasses defined in a script look their module up there)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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


class ConvResidual(nn.Module):
    """``x + relu(conv3x3(x))``: the smallest removable residual block."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(x))


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread per test: CI runs two workers on two cores, and spinning OpenMP
    threads on an oversubscribed machine only burn CPU time. A directory opts in with
    ``from support import one_thread  # noqa: F401`` in its conftest.py."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def wordnet_set_or_skip(**kw):
    """``prunekit.eval.wordnet_retrieval_set(**kw)``; the test is skipped where the Debian
    package ``wordnet-base`` is not installed."""
    from prunekit.eval import wordnet_retrieval_set

    try:
        return wordnet_retrieval_set(**kw)
    except FileNotFoundError:
        pytest.skip("WordNet (wordnet-base) not installed")
