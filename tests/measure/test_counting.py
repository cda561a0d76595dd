"""MAC and parameter counting: closed-form formulas, references, and no side effects."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from prunekit.measure import count_macs, count_params, mac_profile, macs_by_module


def _flop_counter_macs(model, x):
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


@pytest.mark.parametrize(
    "layer, x, expected",
    [
        (nn.Conv2d(3, 8, 3, padding=1), torch.randn(2, 3, 5, 5), 2 * 8 * 25 * 3 * 9),
        (nn.Conv2d(8, 8, 3, groups=4, stride=2), torch.randn(1, 8, 7, 7), 8 * 9 * 2 * 9),
        (nn.Conv1d(4, 6, 3, dilation=2), torch.randn(3, 4, 10), 3 * 6 * 6 * 4 * 3),
        (nn.ConvTranspose2d(4, 6, 2, stride=2), torch.randn(1, 4, 3, 3), 9 * 4 * 6 * 4),
        (nn.Linear(16, 10), torch.randn(4, 16), 4 * 16 * 10),
        (nn.Linear(16, 10, bias=False), torch.randn(2, 7, 16), 14 * 16 * 10),
        (nn.BatchNorm2d(3), torch.randn(2, 3, 4, 4), 0),
        (nn.ReLU(), torch.randn(2, 3), 0),
    ],
)
def test_layer_closed_form(layer, x, expected):
    assert count_macs(layer, x) == expected
    assert count_macs(layer, x) == _flop_counter_macs(layer.eval(), x)


class Functional(nn.Module):
    """Ops reached without modules: functional conv, einsum, matmul, SDPA."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))

    def forward(self, x, q):
        y = F.conv2d(x, self.w)  # 1*4*4*4 * 27
        z = torch.einsum("bij,bjk->bik", q, q.transpose(1, 2))  # 2*5*8*5
        a = F.scaled_dot_product_attention(q[:, None], q[:, None], q[:, None])  # 2*5*5*16
        return y.sum() + z.sum() + (q @ q.transpose(1, 2)).sum() + a.sum()


def test_functional_ops_and_attention():
    x, q = torch.randn(1, 3, 6, 6), torch.randn(2, 5, 8)
    expected = 64 * 27 + 2 * (2 * 5 * 8 * 5) + 2 * 5 * 5 * 16
    profile = mac_profile(Functional(), (x, q))
    assert profile.total == expected
    assert profile.by_module == {"": expected}


def test_mha_fast_path_equals_slow_path():
    mha = nn.MultiheadAttention(32, 4, batch_first=True)
    x = torch.randn(2, 6, 32)
    fast = count_macs(mha, (x, x, x))  # eval + no_grad: fused _native_multi_head_attention

    class Slow(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):  # need_weights=True disables the fused path
            return self.mha(x, x, x, need_weights=True)[0]

    slow = count_macs(Slow(), x)
    tokens = 12
    assert fast == slow == 4 * tokens * 32 * 32 + 2 * 6 * 6 * 32 * 2


def test_encoder_layer_fast_path():
    layer = nn.TransformerEncoderLayer(16, 2, dim_feedforward=24, batch_first=True)
    x = torch.randn(3, 5, 16)
    tokens = 15
    expected = 4 * tokens * 16 * 16 + 3 * 5 * 5 * 16 * 2 + 2 * tokens * 16 * 24
    assert count_macs(layer, x) == expected


def test_attribution_to_innermost_module_and_shared_params():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(nn.Sequential(lin, nn.ReLU()), lin)
    by_module = macs_by_module(model, torch.randn(1, 4))
    assert by_module == {"0.0": 32}  # the shared module keeps its first name
    assert count_params(model) == 20
    lin.weight.requires_grad_(False)
    assert count_params(model, trainable_only=True) == 4


def test_counting_does_not_mutate_model():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout()).train()
    model[2].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_macs(model, torch.randn(2, 3, 8, 8))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in model.modules()] == [True, True, True, False]
    assert not model._forward_hooks and not model[0]._forward_pre_hooks


def test_bad_inputs_raise_type_error():
    with pytest.raises(TypeError, match="example_inputs"):
        count_macs(nn.Linear(2, 2), 3.0)
    with pytest.raises(TypeError, match="model"):
        count_macs("resnet", torch.randn(1))


def test_dict_inputs_are_keyword_arguments():
    class Kw(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, input_ids=None):
            return self.lin(input_ids)

    assert count_macs(Kw(), {"input_ids": torch.randn(5, 3)}) == 30


def test_counting_mode_does_not_wrap_dispatch_in_dynamo():
    """torch wraps ``__torch_dispatch__`` in ``_dynamo.disable`` by default, which imports
    Dynamo (seconds) on the first count; our mode opts out."""
    from prunekit.measure.counting import _MacMode

    assert not hasattr(_MacMode.__dict__["__torch_dispatch__"], "__wrapped__")
