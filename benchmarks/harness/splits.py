"""Train / validation / test splits, with the test set read once per reported number.

Selection (λ, recipe, widths, early stopping) happens on ``val``, a split carved from the
*training* data; the test set is handed out by :meth:`Splits.test` under the name of the
number it produces, and a second read for the same name raises (rule "test read once").
:attr:`Splits.reads` (written into every result file) lists what read the test set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmarks.harness.rules import RuleViolation

Data = tuple[Any, ...]  # (x, y) tensors or arrays, same length along the first axis


@dataclass
class Splits:
    """``train`` and ``val`` to fit and select on; ``test`` only via :meth:`test`."""

    train: Data
    val: Data
    _test: Data = field(repr=False)
    description: dict[str, Any] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def test(self, claim: str) -> Data:
        """The test set, for the reported number ``claim`` (once per claim)."""
        if not claim:
            raise ValueError("Splits.test needs the name of the number it reports")
        if claim in self.reads:
            raise RuleViolation("test read once", f"the test set was already read for "
                                f"{claim!r}; select on the validation split instead")
        self.reads.append(claim)
        return self._test

    def evaluate(self, claim: str, fn: Callable[[Data], float]) -> float:
        """``fn(test)`` for ``claim``: the one read of the test set for that number."""
        return float(fn(self.test(claim)))

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": _len(self.train), "val": _len(self.val), "test": _len(self._test)}

    def to_dict(self) -> dict[str, Any]:
        return {**self.description, "sizes": self.sizes, "test_reads": list(self.reads)}


def carve(train: Data, test: Data, val_fraction: float = 0.1, seed: int = 0,
          stratify: bool = True, **description: Any) -> Splits:
    """Carve a validation split of ``val_fraction`` from ``train`` (seeded; stratified by
    the last element, the labels, when ``stratify``); ``test`` stays untouched."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n = _len(train)
    labels = _numpy(train[-1]) if stratify else None
    val_idx = _val_indices(n, val_fraction, seed, labels)
    mask = np.ones(n, dtype=bool)
    mask[val_idx] = False
    train_idx = np.flatnonzero(mask)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(f"{n} training examples cannot give both a train and a val split "
                         f"at val_fraction={val_fraction}")
    desc = {"val_fraction": val_fraction, "val_seed": seed, "stratified": stratify,
            "val_carved_from": "train", **description}
    return Splits(_take(train, train_idx), _take(train, val_idx), test, desc)


def fashion_mnist(train_size: int | None, seed: int, smoke: bool,
                  val_fraction: float = 0.1) -> Splits:
    """Fashion-MNIST: ``train_size`` training images (seeded draw; all when None), a
    validation split carved from them, the full 10k test set. ``smoke``: synthetic
    stand-in (seconds, no files)."""
    from prunekit.data import fashion_mnist_subset, synthetic_fashion

    if smoke:
        train, test = synthetic_fashion(320, 128, seed=0)
        source = "synthetic_fashion (smoke)"
    else:
        train, test = fashion_mnist_subset(train_size, seed=seed)
        source = f"Fashion-MNIST, {train_size or 'all'} training images (seed {seed})"
    return carve(train, test, val_fraction, seed, source=source)


def _val_indices(n: int, fraction: float, seed: int, labels: np.ndarray | None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.permutation(n)[:max(1, round(fraction * n))])
    picked = []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        picked.append(idx[:max(1, round(fraction * len(idx)))] if len(idx) > 1 else idx[:0])
    return np.sort(np.concatenate(picked))


def _numpy(values: Any) -> np.ndarray:
    return values.numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def _take(data: Data, idx: np.ndarray) -> Data:
    out = []
    for part in data:
        if isinstance(part, torch.Tensor):
            out.append(part[torch.as_tensor(idx, dtype=torch.long)])
        else:
            out.append(np.asarray(part)[idx])
    return tuple(out)


def _len(data: Data) -> int:
    return len(data[0])
