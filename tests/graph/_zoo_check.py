"""Shared check for the coverage tests: prune at ratio 0.5 and verify the contract."""

import os

import torch

import prunekit
from prunekit.graph.trace import call_model, iter_tensors
from prunekit.graph.zoo import torchvision_models

FULL = os.environ.get("PRUNEKIT_ZOO") == "full"


def tv_slice(k, n=3):
    """Every n-th torchvision model starting at k (large ones only with PRUNEKIT_ZOO=full)."""
    models = [m for m in torchvision_models() if FULL or not m.large]
    return [m for i, m in enumerate(models) if i % n == k]


def check(zm):
    """Prune at ratio 0.5: runs, output shapes unchanged, MACs fall >= 1.5x or barriers."""
    torch.manual_seed(0)
    model = zm.build().eval()
    x = zm.inputs()
    with torch.no_grad():
        before = [t.shape for t in iter_tensors(call_model(model, x))]
    res = prunekit.prune(model, x, ratio=0.5)
    with torch.no_grad():
        after = [t.shape for t in iter_tensors(call_model(model, x))]
    assert after == before
    assert res.macs_after <= res.macs_before
    if not res.skipped:
        assert res.macs_before >= 1.5 * res.macs_after, res.mac_reduction
    return model, res
