"""Fashion-MNIST from IDX files: a user path, the Debian package, or (opt-in) download.

Search order: ``root`` (also ``root/FashionMNIST/raw``, torchvision's layout), the
``PRUNEKIT_FASHION_MNIST`` environment variable, the Debian package directory
(``apt-get install dataset-fashion-mnist``), and the user cache
``~/.cache/prunekit/fashion-mnist``. Only ``download=True`` touches the network.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import torch

from prunekit.data.idx import read_idx

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_DIR = Path.home() / ".cache" / "prunekit" / "fashion-mnist"
ENV_VAR = "PRUNEKIT_FASHION_MNIST"
MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
)
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
HOW_TO_GET = (
    "Fashion-MNIST not found. Get it with `sudo apt-get install dataset-fashion-mnist` "
    f"(installs to {DEBIAN_FASHION_MNIST_DIR}), pass root=<dir with the four IDX files>, set "
    f"{ENV_VAR}=<dir>, or call load_fashion_mnist(download=True)."
)


def _resolve(directory: Path) -> dict[str, Path] | None:
    """Map each of the four files to its path in ``directory`` (plain or .gz), or None."""
    found: dict[str, Path] = {}
    for key, stem in FILES.items():
        hits = [p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()]
        if not hits:
            return None
        found[key] = hits[0]
    return found


def _candidates(root: str | os.PathLike | None) -> list[Path]:
    dirs: list[Path] = []
    if root is not None:
        dirs += [Path(root), Path(root) / "FashionMNIST" / "raw", Path(root) / "fashion-mnist"]
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]))
    dirs += [DEBIAN_FASHION_MNIST_DIR, CACHE_DIR]
    return dirs


def find_fashion_mnist(root: str | os.PathLike | None = None) -> dict[str, Path] | None:
    """Paths of the four IDX files from the first directory that has all of them, or None."""
    for directory in _candidates(root):
        found = _resolve(directory)
        if found is not None:
            return found
    return None


def _download(target: Path) -> dict[str, Path]:
    target.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    for mirror in MIRRORS:
        try:
            for stem in FILES.values():
                dest = target / (stem + ".gz")
                if not dest.is_file():
                    urllib.request.urlretrieve(mirror + stem + ".gz", dest)  # noqa: S310
            found = _resolve(target)
            if found is not None:
                return found
        except OSError as err:
            errors.append(f"{mirror}: {err}")
    raise RuntimeError("download of Fashion-MNIST failed: " + "; ".join(errors) + "\n" + HOW_TO_GET)


def _to_tensors(images: Path, labels: Path) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(read_idx(images).copy())
    y = torch.from_numpy(read_idx(labels).copy()).long()
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{images} / {labels}: expected N×H×W images and N labels, got shapes "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    return x.unsqueeze(1).float() / 255.0, y


def load_fashion_mnist(
    root: str | os.PathLike | None = None, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``(X_train, y_train, X_test, y_test)``: ``float32`` ``N×1×28×28`` in ``[0, 1]``.

    Labels are ``int64`` class indices (see :data:`FASHION_MNIST_CLASSES`). With
    ``download=True`` and no local copy, the gzip files are fetched into ``root`` (or
    ``~/.cache/prunekit/fashion-mnist``).

    Raises
    ------
    FileNotFoundError
        When no copy is found and ``download`` is False; the message says how to get one.
    """
    found = find_fashion_mnist(root)
    if found is None:
        if not download:
            searched = ", ".join(str(d) for d in _candidates(root))
            raise FileNotFoundError(f"{HOW_TO_GET} Searched: {searched}")
        found = _download(Path(root) if root is not None else CACHE_DIR)
    x_train, y_train = _to_tensors(found["train_images"], found["train_labels"])
    x_test, y_test = _to_tensors(found["test_images"], found["test_labels"])
    return x_train, y_train, x_test, y_test


Split = tuple[torch.Tensor, torch.Tensor]


def fashion_mnist_subset(train_size: int | None = None, seed: int = 0,
                         root: str | os.PathLike | None = None) -> tuple[Split, Split]:
    """``((X_train, y_train), (X_test, y_test))`` with ``train_size`` training images drawn
    by a seeded permutation (all 60,000 when None) and the full 10,000-image test set —
    the setting the benchmarks report (CPU time rarely allows all 60k)."""
    xtr, ytr, xte, yte = load_fashion_mnist(root)
    idx = torch.randperm(len(ytr), generator=torch.Generator().manual_seed(seed))
    idx = idx[:train_size] if train_size is not None else idx
    return (xtr[idx], ytr[idx]), (xte, yte)


def synthetic_fashion(n_train: int = 256, n_test: int = 128, seed: int = 0) -> tuple[Split, Split]:
    """A seconds-fast stand-in with Fashion-MNIST's shapes (ten noisy class prototypes,
    ``N×1×28×28`` in ``[0, 1]``) for smoke runs and tests; no files needed."""
    gen = torch.Generator().manual_seed(seed)
    proto = torch.rand(10, 1, 28, 28, generator=gen)
    n = n_train + n_test
    y = torch.randint(0, 10, (n,), generator=gen)
    x = (proto[y] + 0.3 * torch.rand(n, 1, 28, 28, generator=gen)).clamp(0, 1)
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])
