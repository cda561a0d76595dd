"""lambda_sweep on a tiny problem: more λ keeps fewer channel groups; JSON, plot, HTML."""

import pytest
import torch
from torch import nn

from prunekit.diagnose import SweepResult, lambda_sweep, sweep_html
from prunekit.methods import FitConfig, evaluate, fit


def data():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=gen)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                         nn.Linear(16, 2))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    x, y = data()
    cfg = FitConfig(epochs=6, batch_size=32, seed=0, progress=False)
    return lambda_sweep(
        build, lambda m, opt: fit(m, (x, y), cfg, optimizer=opt),
        lambda m: evaluate(m, (x, y)), [0.0, 0.03, 0.003, 0.3], calibration=x[:128],
        make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
        plot_path=tmp_path_factory.mktemp("sweep") / "sweep.png", progress=False)


def test_more_lambda_keeps_fewer_groups(sweep):
    lams = [r.lam for r in sweep.records]
    assert lams == sorted(lams) == [0.0, 0.003, 0.03, 0.3]
    kept = [r.groups_kept for r in sweep.records]
    assert kept[0] == sweep.records[0].groups_total == 32  # λ = 0 zeroes nothing
    assert kept[-1] < kept[0]
    assert all(b <= a + 2 for a, b in zip(kept, kept[1:], strict=False))  # monotone-ish
    # finalize removed the zero channels: the pruned model is smaller
    assert sweep.records[-1].params < sweep.records[0].params
    assert sweep.records[0].accuracy > 0.8
    for r in sweep.records:
        assert [x.name for x in r.diagnosis.layers] == ["0", "2", "4"]


def test_collapse_point_and_round_trip(sweep, tmp_path):
    collapse = sweep.collapse_lam
    assert collapse is None or collapse > 0.0
    assert sweep.safe_lam < (collapse if collapse is not None else float("inf"))
    back = SweepResult.from_dict(__import__("json").loads(sweep.to_json()))
    assert [r.groups_kept for r in back.records] == [r.groups_kept for r in sweep.records]
    assert back.collapse_lam == collapse
    png = back.plot(tmp_path / "again.png").read_bytes()
    assert png[:4] == b"\x89PNG"
    fragment = sweep_html(back, png)
    assert "collapse point" in fragment and "0.3" in fragment


def test_collapse_is_the_first_large_drop():
    from prunekit.diagnose.records import Diagnosis
    from prunekit.diagnose.sweep import SweepRecord

    accs = [0.90, 0.91, 0.895, 0.70, 0.5]
    recs = [SweepRecord(lam, a, 10 - i, 10, 100, Diagnosis([]))
            for i, (lam, a) in enumerate(zip([0, 1e-4, 1e-3, 1e-2, 1e-1], accs, strict=True))]
    res = SweepResult(recs, collapse_drop=0.02)
    assert res.collapse_lam == 1e-2 and res.safe_lam == 1e-3


def test_bad_arguments():
    x, _ = data()
    with pytest.raises(ValueError, match="lams"):
        lambda_sweep(build, print, print, [], calibration=x)
    with pytest.raises(ValueError, match="lams"):
        lambda_sweep(build, print, print, [-1.0], calibration=x)
    with pytest.raises(TypeError, match="train_fn"):
        lambda_sweep(build, None, print, [0.0], calibration=x)
    with pytest.raises(ValueError, match="calibration"):
        lambda_sweep(build, print, print, [0.0], calibration=[])
