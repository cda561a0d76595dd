import pytest
import torch
from depth_models import make_ids


@pytest.fixture
def ids() -> dict[str, torch.Tensor]:
    return make_ids()
