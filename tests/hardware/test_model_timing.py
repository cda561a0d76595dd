"""Whole-model timing on CPU: fast models get more runs (counted, never timed)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.hardware import DeviceSpec
from prunekit.hardware.timing import model_latency_fn


class Counting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc(x)


X = torch.randn(2, 4)
SPEC = DeviceSpec("cpu", 1)


@pytest.mark.parametrize(("min_total_ms", "expected"), [
    (0.0, 1 + 3),      # warm-up + repeats, as before
    (1e-9, 1 + 3),     # already enough milliseconds: repeats stays the floor
    (1e12, 1 + 7),     # a fast model: as many runs as allowed (max_repeats)
])
def test_runs_per_timing(min_total_ms, expected):
    model = Counting()
    fn = model_latency_fn(X, SPEC, warmup=1, repeats=3, min_total_ms=min_total_ms,
                          max_repeats=7)
    assert fn(model) > 0
    assert model.calls == expected


def test_extra_warmups_still_run_before_the_timed_one():
    model = Counting()
    model_latency_fn(X, SPEC, warmup=3, repeats=2, min_total_ms=1e12, max_repeats=5)(model)
    assert model.calls == 3 + 5
