"""MACs of recurrent layers: fused kernels (oneDNN on CPU, cuDNN) and the reference path
agree with ``tokens · Σ numel(W_ih, W_hh, W_hr)``, so pruning hidden units shows up."""

import pytest
import torch
from torch import nn

import prunekit
from prunekit.measure import count_macs
from prunekit.measure.counting import MAC_FORMULAS

torch.set_num_threads(1)


def expected(rnn, tokens):
    return tokens * sum(p.numel() for n, p in rnn.named_parameters() if p.dim() == 2)


def reference_path(model, x):
    with torch.backends.mkldnn.flags(enabled=False):
        return count_macs(model, x)


@pytest.mark.parametrize("rnn", [
    nn.LSTM(4, 6),
    nn.LSTM(4, 6, num_layers=2, bidirectional=True, bias=False),
    nn.LSTM(4, 6, num_layers=2, proj_size=3, batch_first=True),
    nn.GRU(4, 6, num_layers=2, bidirectional=True),
    nn.RNN(4, 6, nonlinearity="relu"),
])
def test_recurrent_macs_match_formula_on_every_path(rnn):
    x = torch.randn(5, 3, 4)
    assert count_macs(rnn, x) == expected(rnn, 15)
    assert reference_path(rnn, x) == expected(rnn, 15)


def test_oneDNN_kernel_is_counted():
    profile = prunekit.measure.mac_profile(nn.LSTM(4, 6), torch.randn(5, 3, 4))
    if "aten.mkldnn_rnn_layer" not in profile.by_op:
        pytest.skip("this torch build does not run LSTMs with oneDNN on CPU")
    assert profile.by_op["aten.mkldnn_rnn_layer"] == 15 * (24 * 4 + 24 * 6)


def test_packed_sequence_counts_real_tokens_only():
    rnn = nn.GRU(4, 6)
    packed = nn.utils.rnn.pack_padded_sequence(torch.randn(5, 3, 4), [5, 3, 2])
    assert count_macs(rnn, (packed,)) == expected(rnn, 10)  # a PackedSequence is a tuple


def test_cudnn_formula_counts_matrices_not_biases():
    formula = MAC_FORMULAS[torch.ops.aten._cudnn_rnn]
    rnn = nn.LSTM(4, 6, num_layers=2, proj_size=2)
    weights = list(rnn._flat_weights)
    assert formula((torch.zeros(7, 3, 4), weights, 5), {}, None) == expected(rnn, 21)


def test_pruned_lstm_reports_fewer_macs():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.rnn = nn.LSTM(4, 16, batch_first=True)

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 3)

        def forward(self, out):
            return self.fc(out[0][:, -1])

    model.head = Head()
    x = torch.randn(2, 5, 4)
    res = prunekit.prune(model, x, ratio=0.5)
    assert model.rnn.hidden_size == 8
    assert res.macs_after == expected(model.rnn, 10) + 2 * 8 * 3
    assert res.macs_before == 10 * (64 * 4 + 64 * 16) + 2 * 16 * 3
