"""One result type for ``prunekit.prune``: PruneResult, with a speed target's measurement
as its ``speedup`` field (the old SpeedupResult attributes still read, with a warning)."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

import prunekit
from prunekit.api import PruneResult as ApiPruneResult
from prunekit.hardware import SpeedupResult as HardwareSpeedupResult
from prunekit.result import PruneResult, SpeedupResult
from prunekit.surgery import Plan


def _result(speedup: SpeedupResult | None) -> PruneResult:
    return PruneResult(nn.Linear(2, 2), Plan(groups={}), [], 400, 100, 6, 6, speedup=speedup)


def test_one_class_everywhere():
    assert prunekit.PruneResult is ApiPruneResult is PruneResult
    assert prunekit.SpeedupResult is HardwareSpeedupResult is SpeedupResult


def test_a_ratio_prune_has_no_speedup_and_says_where_it_would_be():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    res = prunekit.prune(model, torch.randn(3, 4), ratio=0.5)
    assert isinstance(res, PruneResult) and res.speedup is None
    with pytest.raises(AttributeError, match="result.speedup.met"):
        _ = res.met
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = res.nonsense


def test_speedup_fields_read_through_the_field_and_the_old_names_warn():
    sp = SpeedupResult(target_speedup=2.0, measured_speedup=3.0, met=True, dense_ms=9.0,
                       pruned_ms=3.0, mac_reduction=4.0)
    res = _result(sp)
    assert res.speedup.rho == pytest.approx(0.75) and res.mac_reduction == 4.0
    with pytest.warns(DeprecationWarning, match="result.speedup.measured_speedup"):
        assert res.measured_speedup == 3.0
    with pytest.warns(DeprecationWarning, match="result.speedup.rho"):
        assert res.rho == pytest.approx(0.75)


def test_results_copy_and_pickle_despite_the_forwarding():
    res = _result(SpeedupResult(measured_speedup=2.0))
    for clone in (copy.deepcopy(res), pickle.loads(pickle.dumps(res))):  # noqa: S301 (own data)
        assert clone.speedup.measured_speedup == 2.0 and clone.macs_before == 400
