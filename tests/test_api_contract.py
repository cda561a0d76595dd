"""The ``prune`` contract: one target, options that apply to it, all checked before a cut.

An argument that does not apply to the call's target is an error naming it (never ignored),
every structure's options are checked against its own ``prune`` signature, "channels" is a
registered structure, and defaults belong to the target (``round_to`` 1 for channel
targets, probed for speed; ``max_ratio`` 1.0 and 0.9).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import prunekit
from prunekit import structures


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()


X = torch.randn(2, 3, 8, 8)


def _state(m: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("kwargs, words", [
    ({"ratio": 0.5, "device": "cuda:7"}, "device= applies to target_speedup"),
    ({"ratio": 0.5, "threads": 99}, "threads= applies to target_speedup"),
    ({"target_macs": 0.5, "batch_size": 8}, "batch_size= applies to target_speedup"),
    ({"ratio": 0.5, "prefer": "macs"}, "prefer= applies"),
    ({"target_speedup": 2.0, "global_ranking": True}, "global_ranking= does not apply"),
    ({"target_speedup": 2.0, "reconstruct": True}, "reconstruct= does not apply"),
    ({"target_speedup": 2.0, "ratio": 0.5}, "exclusive"),
    ({"target_speedup": 2.0, "prefer": "macs"}, "prefer= applies to width or depth"),
    ({"target_speedup": 2.0, "device": "tpu9"}, "tpu9"),
    ({"ratio": 0.3, "structures": ["lowrank"]}, "'lowrank' takes no option 'ratio'"),
    ({"ratio": 0.3, "structures": {"depth": {"n_blocks": 1, "speed": 2}}},
     "'depth' takes no option 'speed'"),
    ({"structures": {"depth": {"n_blocks": 1}}, "importance": "l1"},
     "importance= applies to 'channels'"),
    ({"structures": {"depth": {"n_blocks": 1}}, "round_to": 8}, "round_to= applies"),
    ({"ratio": 0.3, "structures": {"channels": {"ratio": 0.2}}}, "ratio= is given twice"),
    ({"structures": {"channels": {"ratoi": 0.2}}}, "no option 'ratoi'"),
    ({"structures": {"channels": {"ratio": 0.2, "target_macs": 0.5}}}, "exactly one"),
    ({"ratio": 0.3, "global_ranking": "yes"}, "global_ranking must be True or False"),
    ({"ratio": 0.3, "configs": "loose"}, "configs must be"),
    ({"ratio": 0.3, "max_ratio": 0.0}, "max_ratio must be"),
    ({"ratio": 0.3, "min_keep": 0}, "min_keep must be"),
    ({"ratio": 0.3, "ignore": "0"}, "not the string"),
    ({"ratio": 0.3, "structures": {"channels": 0.3}}, "mapping of options"),
])
def test_inapplicable_or_bad_arguments_are_named_and_touch_nothing(kwargs, words):
    m = _net()
    before = _state(m)
    with pytest.raises((ValueError, TypeError)) as err:
        prunekit.prune(m, X, **kwargs)
    assert words in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert m[0].out_channels == 8


def test_options_after_the_channel_target_are_keyword_only():
    with pytest.raises(TypeError):
        prunekit.prune(_net(), X, 0.5, None, "l1")  # importance is keyword-only


def test_channels_is_a_registered_structure_and_the_default_step():
    assert "channels" in structures.available()
    via_registry = structures.get("channels").prune(_net(), X, ratio=0.5)
    via_prune = prunekit.prune(_net(), X, ratio=0.5)
    assert via_registry.plan.groups == via_prune.plan.groups
    groups = structures.get("channels").groups(_net(), X)
    assert {g.id for g in groups} == set(via_prune.plan.groups)


def test_channel_options_may_be_given_under_channels():
    a = prunekit.prune(_net(), X, structures={"channels": {"ratio": 0.5, "round_to": 4}})
    b = prunekit.prune(_net(), X, ratio=0.5, round_to=4)
    assert a.plan.groups == b.plan.groups
    assert all((8 - len(c)) % 4 == 0 for c in a.plan.groups.values())


def _spy(monkeypatch, module, name):
    seen: dict = {}

    def fake(model, x, target, **kwargs):
        seen.update(kwargs)
        return "result"
    monkeypatch.setattr(module, name, fake)
    return seen


def test_speed_defaults_belong_to_the_speed_target(monkeypatch):
    import prunekit.hardware.target as target

    seen = _spy(monkeypatch, target, "prune_to_speedup")
    prunekit.prune(_net(), X, target_speedup=2.0)
    assert seen["round_to"] is None  # probed on the device
    assert "max_ratio" not in seen   # prune_to_speedup's own default (0.9)
    assert seen["device"] == "cpu" and seen["threads"] == 2 and seen["configs"] == "strict"
    prunekit.prune(_net(), X, target_speedup=2.0, round_to=1, max_ratio=0.5, configs="warn")
    assert seen["round_to"] == 1 and seen["max_ratio"] == 0.5  # 1 is 1, not "probe"
    assert seen["configs"] == "warn"


def test_width_or_depth_gets_the_same_width_options(monkeypatch):
    import prunekit.hardware.choose as choose

    seen = _spy(monkeypatch, choose, "prune_width_or_depth")
    prunekit.prune(_net(), X, target_speedup=2.0, structures=["depth", "channels"],
                   threads=1, importance="l1")
    assert seen["prefer"] == "fidelity" and seen["threads"] == 1
    assert seen["importance"] == "l1" and "max_ratio" not in seen


def test_channel_defaults():
    res = prunekit.prune(_net(), X, ratio=0.5)
    assert all(len(c) == 4 for c in res.plan.groups.values())  # max_ratio 1.0, round_to 1
