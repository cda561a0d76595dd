"""Tiny models for the save/load tests (``tests/test_io*.py``): built in milliseconds,
deterministic (fixed seed), each covering a structure that a saved folder can replay."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from support import ConvResidual
from torch import nn

X = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8).div(384.0).sin()


def tiny_cnn() -> nn.Module:
    """Conv-BN-ReLU, a stage of three residual blocks, pooling and a classifier."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Sequential(*[ConvResidual(8) for _ in range(3)]),
        nn.Conv2d(8, 6, 1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a wrong cut shows
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def tiny_mlp() -> nn.Module:
    """An MLP reading a flattened 3x8x8 image (input features and low rank apply)."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(192, 24), nn.ReLU(), nn.Linear(24, 16),
                         nn.ReLU(), nn.Linear(16, 4)).eval()


def pruned_cnn() -> tuple[nn.Module, list]:
    """``tiny_cnn`` with one residual block removed, then channels cut: two steps."""
    import prunekit

    model = tiny_cnn()
    res = prunekit.prune(model, X, ratio=0.4, structures={"depth": {"n_blocks": 1},
                                                          "channels": None})
    return model, res.plans


def refresh_digests(folder: Path) -> None:
    """Recompute the manifest's SHA-256 of every file (an edit that also rewrites the
    manifest, as anyone tampering with a folder would)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in manifest.get("sha256", {}):
        path = folder / name
        if path.is_file() and not path.is_symlink():
            manifest["sha256"][name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def edit_json(folder: Path, name: str, change: Callable[[Any], Any]) -> None:
    """Apply ``change`` to JSON file ``name`` (it may mutate or return the new value) and
    refresh the digests."""
    path = folder / name
    data = json.loads(path.read_text())
    new = change(data)
    path.write_text(json.dumps(data if new is None else new))
    if name != "manifest.json":
        refresh_digests(folder)
