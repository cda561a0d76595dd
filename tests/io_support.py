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


class _Inception(nn.Module):
    def __init__(self, c: int, o: int = 4) -> None:
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(c, o, 1), nn.BatchNorm2d(o), nn.ReLU())
        self.b3 = nn.Sequential(nn.Conv2d(c, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c, o, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.bp(x)], 1)


class _SE(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.squeeze, self.excite = nn.Conv2d(c, c // 2, 1), nn.Conv2d(c // 2, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean((2, 3), True)))))


def tiny_inception() -> nn.Module:
    """Two inception modules (branch structure) with squeeze-and-excitation (se_gate)."""
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), _Inception(8), _SE(12),
                         _Inception(12), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(12, 4)).eval()


def tiny_densenet() -> nn.Module:
    """A torchvision DenseNet with two 3-layer blocks (connection structure)."""
    from torchvision.models.densenet import DenseNet

    torch.manual_seed(3)
    return DenseNet(growth_rate=4, block_config=(3, 3), num_init_features=8, bn_size=2,
                    num_classes=4).eval()


def pruned(kind: str) -> tuple[Callable[[], nn.Module], nn.Module, list]:
    """A fuzz base: the factory, the pruned model and its plans, for ``kind`` in
    channels (plan.json only), cnn (depth, channels), mlp (input_feature, channels,
    lowrank), inception (branch, se_gate, channels) and densenet (connection, channels)."""
    import prunekit
    from prunekit import structures

    if kind == "cnn":
        return (tiny_cnn, *pruned_cnn())
    if kind == "channels":
        model = tiny_cnn()
        return tiny_cnn, model, prunekit.prune(model, X, ratio=0.4).plan
    if kind == "mlp":
        model = tiny_mlp()
        plans = [structures.get("input_feature").prune(model, X, n_features=100).plan,
                 prunekit.prune(model, X, ratio=0.25).plan,
                 structures.get("lowrank").remove(model, {"5": 2}, X)]
        return tiny_mlp, model, plans
    if kind == "inception":
        model = tiny_inception()
        plans = [structures.get("branch").prune(model, X, n_branches=1).plan,
                 structures.get("se_gate").prune(model, X, ratio=0.25).plan,
                 prunekit.prune(model, X, ratio=0.25).plan]
        return tiny_inception, model, plans
    model = tiny_densenet()
    plans = [structures.get("connection").prune(model, X, n_connections=3).plan,
             prunekit.prune(model, X, ratio=0.25).plan]
    return tiny_densenet, model, plans
