"""The sklearn 8×8 digits as image tensors: the embedded default dataset (no download)."""

from __future__ import annotations

import torch


def load_digits_tensors(
    seed: int = 0, test_size: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(X_train, y_train, X_test, y_test)`` from :func:`sklearn.datasets.load_digits`.

    Images are ``float32`` tensors of shape ``N×1×8×8`` scaled to ``[0, 1]`` (pixel / 16);
    labels are ``int64``. The split is stratified and reproducible for a given ``seed``.

    Parameters
    ----------
    seed : int
        Random state of the train/test split.
    test_size : float
        Fraction of the 1,797 samples held out, in ``(0, 1)``.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0.0 < float(test_size) < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.as_tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(data.target, dtype=torch.int64)
    idx_train, idx_test = train_test_split(
        torch.arange(len(y)).numpy(), test_size=test_size, random_state=seed,
        stratify=y.numpy(),
    )
    tr, te = torch.as_tensor(idx_train), torch.as_tensor(idx_test)
    return x[tr], y[tr], x[te], y[te]
