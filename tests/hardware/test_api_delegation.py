"""``prunekit.prune(..., target_speedup=...)`` hands the work to prune_to_speedup."""

from __future__ import annotations

import pytest
import torch
from hw_helpers import resnetish

import prunekit
import prunekit.hardware.target as target_mod


def test_prune_with_target_speedup_delegates(monkeypatch):
    seen = {}

    def fake(model, example_inputs, target_speedup, **kwargs):
        seen.update(kwargs, model=model, target=target_speedup)
        return "result"

    monkeypatch.setattr(target_mod, "prune_to_speedup", fake)
    model, x = resnetish(), torch.randn(1, 3, 16, 16)
    out = prunekit.prune(model, x, target_speedup=2.5, device="cpu", threads=1, batch_size=8,
                         importance="l1", round_to=8)
    assert out == "result" and seen["model"] is model and seen["target"] == 2.5
    assert seen["threads"] == 1 and seen["batch_size"] == 8 and seen["device"] == "cpu"
    assert seen["importance"] == "l1" and seen["round_to"] == 8


def test_target_speedup_is_exclusive_with_ratio():
    with pytest.raises(ValueError, match="target_speedup"):
        prunekit.prune(resnetish(), torch.randn(1, 3, 16, 16), ratio=0.5, target_speedup=2.0)
