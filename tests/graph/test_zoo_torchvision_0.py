"""Every torchvision classification model, part 1 of 3 (split for pytest-xdist)."""

import pytest
import torch
from _zoo_check import check, tv_slice

MODELS = tv_slice(0)


@pytest.mark.parametrize("zm", MODELS, ids=[m.name for m in MODELS])
def test_prunes_at_half_ratio(zm):
    torch.set_num_threads(1)
    check(zm)
