"""Recurrent layers (nn.LSTM / nn.GRU / nn.RNN and their cells) as coupled hidden units.

Zero-group invariance is the check throughout: zero a group's slices in every member, then
physically removing them must leave the outputs unchanged (up to float rounding).
"""

import random

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support import assert_same_state, state_of
from torch import nn

import prunekit
from prunekit.graph import build_groups
from prunekit.graph.trace import call_model
from prunekit.surgery import SurgeryError, remove_channels

RNNS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN, "rnn_relu": nn.RNN}


def make_rnn(cell, n_in, hidden, layers=1, bidir=False, proj=0, bias=True, batch_first=True,
             dropout=0.0):
    kw = dict(num_layers=layers, bidirectional=bidir, bias=bias, batch_first=batch_first,
              dropout=dropout)
    if proj:
        kw["proj_size"] = proj
    if cell.startswith("rnn_"):
        kw["nonlinearity"] = cell[4:]
    return RNNS[cell](n_in, hidden, **kw)


def out_width(rnn):
    return (rnn.proj_size or rnn.hidden_size) * (2 if rnn.bidirectional else 1)


class Classifier(nn.Module):
    """front end -> recurrent stack -> head reading the last step, the mean or h_n."""

    def __init__(self, front, rnns, head):
        super().__init__()
        self.front, self.head_kind = front, head
        self.rnns = nn.ModuleList(rnns)
        self.emb = nn.Embedding(13, 6) if front == "embedding" else None
        self.conv = nn.Conv1d(5, 6, 3, padding=1) if front == "conv" else None
        self.head = nn.Linear(out_width(rnns[-1]), 3)

    def forward(self, x):
        if self.emb is not None:
            x = self.emb(x)
        if self.conv is not None:
            x = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        for rnn in self.rnns:
            if not rnn.batch_first:
                x = x.transpose(0, 1)
            x, state = rnn(x)
            if not rnn.batch_first:
                x = x.transpose(0, 1)
        if self.head_kind == "last":
            return self.head(x[:, -1])
        if self.head_kind == "mean":
            return self.head(x.mean(1))
        h = state[0] if isinstance(state, tuple) else state
        last = self.rnns[-1]
        if last.bidirectional:
            return self.head(torch.cat([h[-2], h[-1]], dim=1))
        return self.head(h[-1])


def example_input(front, batch=3, steps=5):
    g = torch.Generator().manual_seed(1)
    if front == "embedding":
        return torch.randint(0, 13, (batch, steps), generator=g)
    return torch.randn(batch, steps, 5 if front == "conv" else 6, generator=g)


def zero(model, group, channels):
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    with torch.no_grad():
        for m in group.members:
            idx = [i for c in channels for i in m.index[c]]
            if idx:
                tensors[m.param].index_fill_(m.dim, torch.tensor(idx), 0.0)


def assert_zero_groups_free(model, x, removal, atol=1e-5):
    gs = build_groups(model, x)
    for gid, chans in removal(gs).items():
        zero(model, gs.by_id()[gid], chans)
    chosen = removal(gs)
    assert chosen, "nothing to remove"
    before = call_model(model, x)
    remove_channels(model, gs, chosen, x)
    after = call_model(model, x)
    assert (before - after).abs().max().item() < atol
    return gs


def first_half(gs):
    """The first ceil(n/2) channels of every group (not symmetric: a unit map that is
    reversed or shifted somewhere fails the value check)."""
    return {g.id: list(range((g.size + 1) // 2)) for g in gs.groups if g.prunable}


def members(group):
    return {(m.param, m.dim): m.index for m in group.members}


def group_with(gs, param, dim):
    found = [g for g in gs.groups if (param, dim) in members(g)]
    assert len(found) == 1, f"{param}:{dim} in {len(found)} groups"
    return found[0]


def test_lstm_unit_spans_every_gate_and_the_recurrence():
    torch.manual_seed(0)
    model = Classifier("embedding", [make_rnn("lstm", 6, 5)], "last").eval()
    gs = build_groups(model, example_input("embedding"))
    g = group_with(gs, "rnns.0.weight_ih_l0", 0)
    mem = members(g)
    assert g.size == 5
    gates = [[j + k * 5 for k in range(4)] for j in range(5)]
    for key in [("rnns.0.weight_ih_l0", 0), ("rnns.0.weight_hh_l0", 0),
                ("rnns.0.bias_ih_l0", 0), ("rnns.0.bias_hh_l0", 0)]:
        assert mem[key] == gates, key
    assert mem[("rnns.0.weight_hh_l0", 1)] == [[j] for j in range(5)]
    assert mem[("head.weight", 1)] == [[j] for j in range(5)]
    emb = group_with(gs, "emb.weight", 1)  # the embedding dim is the LSTM's input
    assert members(emb)[("rnns.0.weight_ih_l0", 1)] == [[j] for j in range(6)]
    assert gs.skipped == []


def test_stacked_bidirectional_units_are_shared_by_layers_and_directions():
    """nn.LSTM has one hidden_size: unit j is cut in every layer and both directions;
    the next layer (and the head) reads it at columns j and H + j."""
    torch.manual_seed(0)
    model = Classifier(None, [make_rnn("gru", 6, 4, layers=2, bidir=True)], "hn").eval()
    g = group_with(build_groups(model, example_input(None)), "rnns.0.weight_ih_l0", 0)
    mem = members(g)
    assert g.size == 4
    for name in ("weight_hh_l0_reverse", "weight_ih_l1", "weight_hh_l1_reverse"):
        assert mem[(f"rnns.0.{name}", 0)] == [[j, j + 4, j + 8] for j in range(4)]
    assert mem[("rnns.0.weight_ih_l1", 1)] == [[j, j + 4] for j in range(4)]
    assert mem[("head.weight", 1)] == [[j, j + 4] for j in range(4)]


def test_projection_gives_cell_and_projected_groups():
    torch.manual_seed(0)
    model = Classifier(None, [make_rnn("lstm", 6, 5, layers=2, proj=3)], "last").eval()
    gs = build_groups(model, example_input(None))
    cell = group_with(gs, "rnns.0.weight_ih_l0", 0)
    proj = group_with(gs, "rnns.0.weight_hr_l0", 0)
    assert (cell.size, proj.size) == (5, 3) and cell is not proj
    assert members(cell)[("rnns.0.weight_hr_l1", 1)] == [[j] for j in range(5)]
    assert members(proj)[("rnns.0.weight_hh_l1", 1)] == [[k] for k in range(3)]
    assert members(proj)[("rnns.0.weight_ih_l1", 1)] == [[k] for k in range(3)]
    assert members(proj)[("head.weight", 1)] == [[k] for k in range(3)]


VARIANTS = [
    # cell, layers, bidir, proj, bias, batch_first, head, front
    ("lstm", 1, False, 0, True, True, "last", "embedding"),
    ("lstm", 2, True, 0, True, False, "mean", None),
    ("lstm", 2, True, 3, True, True, "hn", None),
    ("lstm", 1, False, 2, False, False, "last", "conv"),
    ("lstm", 3, False, 0, False, True, "hn", "embedding"),
    ("gru", 1, True, 0, True, True, "hn", "embedding"),
    ("gru", 2, False, 0, False, False, "last", "conv"),
    ("rnn_tanh", 2, True, 0, True, True, "mean", None),
    ("rnn_relu", 1, False, 0, False, False, "hn", "embedding"),
]


@pytest.mark.parametrize("cell,layers,bidir,proj,bias,batch_first,head,front", VARIANTS)
def test_zero_groups_are_free(cell, layers, bidir, proj, bias, batch_first, head, front):
    torch.manual_seed(0)
    rnn = make_rnn(cell, 6, 5, layers, bidir, proj, bias, batch_first)
    model = Classifier(front, [rnn], head).eval()
    x = example_input(front)
    gs = assert_zero_groups_free(model, x, first_half)
    assert rnn.hidden_size == 2 and rnn.proj_size == (1 if proj else 0)
    assert gs.skipped == []
    # the cut module is one its own constructor accepts, with the weights it holds
    fresh = make_rnn(cell, rnn.input_size, rnn.hidden_size, layers, bidir, rnn.proj_size,
                     bias, batch_first)
    fresh.load_state_dict(rnn.state_dict())
    assert [tuple(w.shape) for w in rnn._flat_weights] == \
        [tuple(getattr(rnn, n).shape) for n in rnn._flat_weights_names]


def test_pruned_lstm_agrees_on_onednn_and_reference_paths():
    torch.manual_seed(0)
    model = Classifier(None, [make_rnn("lstm", 6, 8, layers=2, bidir=True)], "last").eval()
    x = example_input(None)
    prunekit.prune(model, x, ratio=0.5)
    with torch.no_grad():
        fused = model(x)
        with torch.backends.mkldnn.flags(enabled=False):
            reference = model(x)
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-5)


class Packed(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.emb = nn.Embedding(13, 6)
        self.rnn = make_rnn(cell, 6, 5, layers=2, bidir=True)
        self.head = nn.Linear(20, 3)

    def forward(self, tokens, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(self.emb(tokens), lengths,
                                                   batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        h = h[0] if isinstance(h, tuple) else h
        padded, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True)
        return self.head(torch.cat([padded.sum(1), h[-2], h[-1]], dim=1))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_packed_sequences(cell):
    torch.manual_seed(0)
    model = Packed(cell).eval()
    x = (example_input("embedding", batch=4), torch.tensor([5, 2, 4, 3]))
    gs = assert_zero_groups_free(model, x, first_half)
    assert model.rnn.hidden_size == 2 and model.emb.embedding_dim == 3
    assert gs.skipped == []


class GivenState(nn.Module):
    """An LSTM whose initial states come from a parameter, a buffer or constants."""

    def __init__(self, kind="param"):
        super().__init__()
        self.rnn = nn.LSTM(6, 5, num_layers=2, batch_first=True)
        self.h0 = nn.Parameter(torch.randn(2, 1, 5))
        self.register_buffer("c0", torch.randn(2, 3, 5))  # used as is: batch 3 only
        self.kind = kind
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        size = (2, x.shape[0], self.rnn.hidden_size)
        h0 = self.h0.expand(size).contiguous() if self.kind == "param" else None
        if self.kind == "full":  # the same for every unit: made again at the new size
            h0 = torch.full(size, 0.5)
        elif self.kind == "arange":  # differs between units: would not follow a cut
            h0 = torch.arange(float(size[-1])).expand(size).contiguous()
        elif self.kind == "expanded buffer":  # untracked once expanded
            h0 = self.c0[:, :1].expand(size).contiguous()
        out, _ = self.rnn(x, (h0, self.c0))
        return self.head(out[:, -1])


@pytest.mark.parametrize("kind", ["param", "full"])
def test_parameter_buffer_and_uniform_initial_states(kind):
    torch.manual_seed(0)
    model = GivenState(kind).eval()
    gs = assert_zero_groups_free(model, example_input(None), first_half)
    mem = members(group_with(gs, "rnn.weight_ih_l0", 0))
    assert mem[("c0", 2)] == [[j] for j in range(5)]  # a registered buffer is cut too
    assert (("h0", 2) in mem) == (kind == "param")
    assert model.c0.shape == (2, 3, 2) and model.rnn.hidden_size == 2 and gs.skipped == []


@pytest.mark.parametrize("kind", ["arange", "expanded buffer"])
def test_untracked_state_that_differs_between_units_keeps_them_and_says_so(kind):
    model = GivenState(kind).eval()
    gs = build_groups(model, example_input(None))
    assert all("weight_ih_l0" not in m.param for g in gs.groups for m in g.members)
    assert any("initial state" in s["reason"] and s["module"] == "rnn" for s in gs.skipped)


class StateFromInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(6, 5, batch_first=True)
        self.head = nn.Linear(5, 3)

    def forward(self, x, h0):
        return self.head(self.rnn(x, h0)[0][:, -1])


def test_state_given_as_model_input_is_left_whole_and_named():
    """A zero h0 passed in by the caller cannot shrink: the forward check with the same
    inputs fails, so prune leaves the units whole and names them (never silently wrong)."""
    torch.manual_seed(0)
    model = StateFromInput().eval()
    x = (example_input(None), torch.zeros(1, 3, 5))
    res = prunekit.prune(model, x, ratio=0.5)
    assert model.rnn.hidden_size == 5 and call_model(model, x).shape == (3, 3)
    assert any(s.get("group") == "rnn" for s in res.skipped)


def test_recurrent_output_as_model_output_is_not_pruned():
    model = nn.LSTM(6, 5, num_layers=2, batch_first=True)
    gs = build_groups(model, example_input(None))
    assert gs.groups == []


def test_projection_not_smaller_than_hidden_is_refused_and_restored():
    torch.manual_seed(0)
    model = Classifier(None, [make_rnn("lstm", 6, 6, proj=3)], "last").eval()
    x = example_input(None)
    gs = build_groups(model, x)
    cell = group_with(gs, "rnns.0.weight_ih_l0", 0)
    before = state_of(model)
    with pytest.raises(SurgeryError, match="proj_size 3 would not be smaller"):
        remove_channels(model, gs, {cell.id: [0, 1, 2]}, x)
    assert_same_state(before, state_of(model))
    assert model.rnns[0].hidden_size == 6
    res = prunekit.prune(model, x, ratio=0.5)  # both groups shrink: 6 -> 3, 3 -> 2
    assert (model.rnns[0].hidden_size, model.rnns[0].proj_size) == (3, 2)
    assert model(x).shape == (3, 3) and not [s for s in res.skipped if "group" in s]
    model = Classifier(None, [make_rnn("lstm", 6, 3, proj=2)], "last").eval()
    res = prunekit.prune(model, x, ratio=0.9)  # 3 -> 1 would meet proj 2 -> 1: kept, named
    assert model.rnns[0].hidden_size == 3 and model.rnns[0].proj_size == 1
    assert [s["reason"] for s in res.skipped if "proj_size" in s["reason"]]


def test_cut_of_one_direction_only_is_refused_and_restored():
    """The handler checks every flat weight against the module's sizes: a hand-made
    group that cuts one direction's recurrence fails and loses nothing."""
    from prunekit.graph.types import Group, GroupSet, Member

    model = nn.GRU(4, 5, bidirectional=True)
    x = torch.randn(3, 2, 4)
    bad = Group("bad", 5, [Member("weight_hh_l0_reverse", 1, [[j] for j in range(5)])])
    gs = GroupSet([bad], [], output_shapes=[(3, 2, 10), (2, 2, 5)])
    before = state_of(model)
    with pytest.raises(SurgeryError, match=r"weight_hh_l0_reverse has shape \(15, 3\)"):
        remove_channels(model, gs, {"bad": [0, 1]}, x)
    assert_same_state(before, state_of(model))
    assert model(x)[0].shape == (3, 2, 10)


class CellLoop(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell}[kind](6, 5)
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        state = None
        for t in range(x.shape[1]):
            state = self.cell(x[:, t], state)
        h = state[0] if isinstance(state, tuple) else state
        return self.head(h)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_cells_in_a_loop(kind):
    torch.manual_seed(0)
    model = CellLoop(kind).eval()
    gs = assert_zero_groups_free(model, example_input(None), first_half)
    assert model.cell.hidden_size == 2 and gs.skipped == []


def test_prune_reduces_an_lstm_classifier_and_round_trips(tmp_path):
    def factory():
        torch.manual_seed(0)
        rnn = make_rnn("lstm", 6, 16, layers=2, bidir=True, dropout=0.3)  # off in eval
        return Classifier("embedding", [rnn], "hn").eval()

    model = factory()
    x = example_input("embedding")
    res = prunekit.prune(model, x, ratio=0.5)
    assert res.params_after < 0.5 * res.params_before
    assert res.macs_after < 0.5 * res.macs_before
    assert model.rnns[0].hidden_size == 8 and model.emb.embedding_dim == 3
    assert model(x).shape == (3, 3) and res.skipped == []
    path = prunekit.save(model, tmp_path / "lstm", plan=res.plan)
    loaded = prunekit.load(path, factory).eval()
    assert loaded.rnns[0].hidden_size == 8
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


# -- random recurrent architectures ------------------------------------------------------


def build(spec, seed):
    rng = random.Random(seed)
    front, head, n_rnn = spec
    n_in = 6
    rnns = []
    for _ in range(n_rnn):
        cell = rng.choice(list(RNNS))
        proj = rng.choice([0, 2]) if cell == "lstm" else 0
        rnn = make_rnn(cell, n_in, rng.choice([3, 4, 5]), rng.choice([1, 2]),
                       rng.random() < 0.5, proj, rng.random() < 0.7, rng.random() < 0.5)
        rnns.append(rnn)
        n_in = out_width(rnn)
    torch.manual_seed(seed)
    return Classifier(front, rnns, head).eval()


SPECS = st.tuples(st.sampled_from([None, "embedding", "conv"]),
                  st.sampled_from(["last", "mean", "hn"]), st.integers(1, 2))
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow])


def _draw_removal(gs, data):
    picks = {}
    for g in gs.groups:
        if g.prunable and data.draw(st.booleans()):
            picks[g.id] = data.draw(st.lists(st.integers(0, g.size - 1), min_size=1,
                                             max_size=g.size - 1, unique=True))
    if not picks:  # always cut something
        g = next(g for g in gs.groups if g.prunable)
        picks[g.id] = [0]
    return picks


@SETTINGS
@given(spec=SPECS, seed=st.integers(0, 10_000), data=st.data())
def test_random_recurrent_models_zero_groups_are_free(spec, seed, data):
    model = build(spec, seed)
    x = example_input(spec[0])
    gs = build_groups(model, x)
    assert not [s for s in gs.skipped if s["op"] in RNNS]
    assert any(m.param.startswith("rnns.") for g in gs.groups for m in g.members)
    removal = _draw_removal(gs, data)
    for gid, chans in removal.items():
        zero(model, gs.by_id()[gid], chans)
    before, state = model(x), state_of(model)
    try:
        remove_channels(model, gs, removal, x)
    except SurgeryError as err:  # an LSTM whose cell units would not exceed proj_size
        assert "proj_size" in str(err)
        assert_same_state(state, state_of(model))
        return
    assert (before - model(x)).abs().max().item() < 1e-5


@SETTINGS
@given(spec=SPECS, seed=st.integers(0, 10_000), ratio=st.floats(0.0, 0.9))
def test_random_recurrent_models_prune_at_any_ratio(spec, seed, ratio):
    model = build(spec, seed)
    x = example_input(spec[0])
    shape = model(x).shape
    res = prunekit.prune(model, x, ratio=ratio)
    assert model(x).shape == shape
    assert res.macs_after <= res.macs_before
    assert all("proj_size" in s["reason"] for s in res.skipped if "group" in s)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (cuDNN RNN kernels)")
def test_pruned_lstm_on_cuda_is_reflattened_and_matches_cpu():
    import copy
    import warnings

    from prunekit.measure import count_macs

    torch.manual_seed(0)
    model = Classifier(None, [make_rnn("lstm", 6, 8, layers=2, bidir=True, proj=4)],
                       "hn").eval()
    x = example_input(None)
    cpu = copy.deepcopy(model)
    prunekit.prune(cpu, x, ratio=0.5)
    model.cuda()
    prunekit.prune(model, x.cuda(), ratio=0.5)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*contiguous chunk of memory.*")
        out = model(x.cuda())
    torch.testing.assert_close(out.cpu(), cpu(x), rtol=2e-3, atol=2e-3)  # cuDNN may use TF32
    assert count_macs(model, x.cuda()) == count_macs(cpu, x)
