import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Train on one intra-op thread: on a shared 2-core CI box two threads spin-wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn digits as ((x_train, y_train), (x_test, y_test)) tensors, seed 0."""
    from prunekit.data import load_digits_tensors

    xtr, ytr, xte, yte = load_digits_tensors(seed=0)
    return (xtr, ytr), (xte, yte)
