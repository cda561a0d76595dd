"""The "connection" structure: dense blocks, zero-connection invariance, removal, diagram."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.densenet import DenseNet

from prunekit import structures
from prunekit.methods import ProximalGroupLasso
from prunekit.structures.connection import (
    ConnectedDenseBlock,
    ConnectionPlan,
    apply_connection_plan,
    connection_diagram,
    connection_groups,
    find_connections,
    find_dense_blocks,
    group_units,
    prune_connections,
    remove_connections,
    zero_connections,
)

B1 = "features.denseblock1"


def _net() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = DenseNet(growth_rate=4, block_config=(3, 3), num_init_features=8, bn_size=2,
                   num_classes=5)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    return net.eval(), torch.randn(2, 3, 32, 32)


class Layer(nn.Module):
    def __init__(self, c: int, g: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.conv = nn.Conv2d(c, g, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.relu(self.bn(x)))


class UserDense(nn.Module):
    """A user dense block that concatenates before calling each layer."""

    def __init__(self, c: int, g: int, n: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Layer(c + k * g, g) for k in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


def _zero(model: nn.Module, x: torch.Tensor, names: list[str], level: str) -> None:
    params = dict(model.named_parameters())
    units = group_units(model, x, level)
    with torch.no_grad():
        for g in connection_groups(model, x, level):
            for k, name in enumerate(units[g.id]):
                if name in names:
                    for m in g.members:
                        if m.param in params and m.index[k]:
                            params[m.param].index_fill_(m.dim, torch.tensor(m.index[k]), 0.0)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    now = model.state_dict()
    assert list(now) == list(state)
    assert all(torch.equal(now[k], v) for k, v in state.items())


def test_finds_dense_blocks_and_connections():
    net, x = _net()
    blocks = find_dense_blocks(net, x)
    assert [b.name for b in blocks] == [B1, "features.denseblock2"]
    assert blocks[0].call == "list" and blocks[0].order == ["denselayer1", "denselayer2",
                                                            "denselayer3"]
    names = find_connections(net, x)
    assert len(names) == 2 * (6 + 4)  # 6 layer-to-layer + 4 to the output, per block
    assert f"{B1}:input->denselayer3" in names and f"{B1}:denselayer2->out" in names
    user = nn.Sequential(nn.Conv2d(3, 4, 3), UserDense(4, 2, 3)).eval()
    ub = find_dense_blocks(user, torch.randn(1, 3, 10, 10))
    assert [(b.name, b.call, b.order) for b in ub] == \
        [("1", "tensor", ["layers.0", "layers.1", "layers.2"])]


def test_zero_connections_are_free_to_remove():
    net, x = _net()
    names = [f"{B1}:input->denselayer2", f"{B1}:denselayer1->denselayer3",
             "features.denseblock2:denselayer1->denselayer2"]
    _zero(net, x, names, "connection")
    y0 = net(x)
    assert sorted(zero_connections(net, x)) == sorted(names)
    plan = remove_connections(net, names, x)
    assert torch.allclose(net(x), y0, atol=1e-5)
    assert isinstance(net.features.denseblock1, ConnectedDenseBlock)
    assert net.features.denseblock1.denselayer3.norm1.num_features == 8 + 4
    assert sorted(plan.removed) == sorted(names)
    assert net(torch.randn(1, 3, 40, 40)).shape == (1, 5)


def test_layer_without_outgoing_connections_is_removed_whole():
    net, x = _net()
    _zero(net, x, [f"{B1}:denselayer1->*"], "layer")
    y0 = net(x)
    zeros = zero_connections(net, x)
    assert f"{B1}:denselayer1->out" in zeros
    res = prune_connections(net, x, zero_only=True)
    assert res.plan.removed_layers == {B1: ["denselayer1"]}
    assert "denselayer1" not in dict(net.features.denseblock1.named_children())
    assert net.features.transition1.conv.in_channels == 8 + 2 * 4
    assert torch.allclose(net(x), y0, atol=1e-5)
    assert res.after == res.before - 3


def test_bad_names_and_models_leave_the_model_untouched():
    net, x = _net()
    state = _state(net)
    for names, match in (([f"{B1}:denselayer2->out"], "only go together"),
                         ([f"{B1}:nope->denselayer2"], "not a surviving"),
                         (["features.x:input->denselayer1"], "no dense block"),
                         (["garbage"], "not a connection name"),
                         ([f"{B1}:input->denselayer1"], "no input left")):
        with pytest.raises(ValueError, match=match):
            remove_connections(net, names, x)
    _same_state(net, state)
    assert isinstance(net.features.denseblock1, torchvision.models.densenet._DenseBlock)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()).eval()
    pstate = _state(plain)
    xs = torch.randn(1, 3, 6, 6)
    for call in (lambda: connection_groups(plain, xs), lambda: prune_connections(
            plain, xs, ratio=0.5), lambda: remove_connections(plain, ["a:b->c"], xs)):
        with pytest.raises(ValueError, match="no dense blocks"):
            call()
    _same_state(plain, pstate)
    with pytest.raises(ValueError, match="level"):
        connection_groups(net, x, level="edge")


def test_plan_json_round_trip_and_diagram(tmp_path):
    net, x = _net()
    fresh = copy.deepcopy(net)
    res = prune_connections(net, x, ratio=0.5)
    assert len(res.plan.removed) == 6
    plan = ConnectionPlan.from_json(res.plan.to_json())
    apply_connection_plan(fresh, plan, x)
    assert torch.allclose(fresh(x), net(x), atol=1e-6)
    png, js = tmp_path / "d.png", tmp_path / "d.json"
    data = connection_diagram(net, x, png=str(png), json_path=str(js))
    assert png.stat().st_size > 1000
    assert json.loads(js.read_text()) == data
    blk = data["blocks"][0]
    assert blk["connections_total"] == 10
    assert blk["connections_kept"] == 10 - sum(1 for n in res.plan.removed if n.startswith(B1))
    assert blk["matrix"][2][0] is None  # layer 2 never feeds layer 1


def test_proximal_training_zeroes_connections():
    net, x = _net()
    net.train()
    groups = connection_groups(net, x, "connection")
    assert structures.get("connection").groups is connection_groups
    opt = ProximalGroupLasso(torch.optim.SGD(net.parameters(), lr=0.05), net, groups, lam=1.5)
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        opt.zero_grad()
        net(torch.randn(8, 3, 32, 32, generator=gen)).pow(2).mean().backward()
        opt.step()
    net.eval()
    assert opt.zero_groups(), "a large λ drives some connection to exactly zero"
    y0 = net(x)
    res = prune_connections(net, x, zero_only=True)
    assert res.plan.removed
    assert torch.allclose(net(x), y0, atol=1e-5)


def test_user_dense_block_and_densenet121():
    torch.manual_seed(0)
    user = nn.Sequential(nn.Conv2d(3, 4, 3), UserDense(4, 2, 3), nn.Conv2d(10, 3, 1)).eval()
    xs = torch.randn(2, 3, 10, 10)
    block = find_dense_blocks(user, xs)[0].name
    _zero(user, xs, [f"{block}:layers.0->*"], "layer")
    y0 = user(xs)
    prune_connections(user, xs, zero_only=True)
    assert torch.allclose(user(xs), y0, atol=1e-5)
    assert user[2].in_channels == 8 and user[1].layers[0] is None
    m = torchvision.models.densenet121(num_classes=6).eval()
    x = torch.randn(1, 3, 64, 64)
    remove_connections(m, ["features.denseblock1:denselayer2->denselayer3",
                           "features.denseblock4:denselayer16->*"], x)
    assert m(torch.randn(2, 3, 64, 64)).shape == (2, 6)
