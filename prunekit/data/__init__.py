"""Dataset loaders: sklearn digits (embedded), MNIST/Fashion-MNIST IDX files, WordNet glosses.

Nothing here downloads unless asked (``download=True``); errors say how to get the data.
"""

from prunekit.data.digits import load_digits_tensors
from prunekit.data.fashion_mnist import (
    DEBIAN_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    fashion_mnist_subset,
    find_fashion_mnist,
    load_fashion_mnist,
    synthetic_fashion,
)
from prunekit.data.idx import read_idx, write_idx
from prunekit.data.wordnet import DEBIAN_WORDNET_DIR, Gloss, load_wordnet_glosses, wordnet_dir

__all__ = [
    "DEBIAN_FASHION_MNIST_DIR",
    "DEBIAN_WORDNET_DIR",
    "FASHION_MNIST_CLASSES",
    "Gloss",
    "fashion_mnist_subset",
    "find_fashion_mnist",
    "load_digits_tensors",
    "load_fashion_mnist",
    "load_wordnet_glosses",
    "read_idx",
    "synthetic_fashion",
    "wordnet_dir",
    "write_idx",
]
