"""timm models named in issue 3 (random weights, 64x64)."""

import pytest
from _zoo_check import FULL, check

from prunekit.graph.zoo import timm_models

MODELS = [m for m in timm_models() if FULL or not m.large]


def _heads(model):
    return sum(m.num_heads for m in model.modules() if hasattr(m, "qkv"))


@pytest.mark.parametrize("zm", MODELS, ids=[m.name for m in MODELS])
def test_prunes_at_half_ratio(zm):
    model, res = check(zm)
    if any(k in zm.name for k in ("vit", "deit", "swin")):
        assert _heads(model) < _heads(zm.build()), "attention heads were not pruned"
