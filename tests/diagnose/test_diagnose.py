"""diagnose() on small CNNs and MLPs: records, dead channels, JSON, errors, HTML."""

import copy

import pytest
import torch
from torch import nn

from prunekit.diagnose import Diagnosis, diagnose, diagnosis_html, plot_diagnosis


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 12),
        nn.ReLU(), nn.Linear(12, 4))


def mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 8),
                         nn.ReLU(), nn.Linear(8, 3))


def images(n: int = 24, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_cnn_has_one_record_per_layer_and_group():
    model = small_cnn()
    labels = torch.zeros(12, dtype=torch.long)
    d = diagnose(model, [(images()[:12], labels), (images()[12:], labels)])
    assert [r.name for r in d.layers] == ["0", "4", "7", "9"]
    assert [r.kind for r in d.layers] == ["conv", "conv", "linear", "linear"]
    assert [r.channels for r in d.layers] == [6, 8, 12, 4]
    assert {r.name for r in d.groups} == {"0", "4", "7"}  # the output layer has no group
    assert d.config["batches"] == 2
    first = d.layers[0]
    assert first.rows == 24 * 8 * 8  # samples × positions
    assert 1.0 <= first.erank <= 6 and 1 <= first.energy_rank <= 6
    for r in d.records:
        assert r.weight_cosine is not None and 0 <= r.weight_cosine.mean_abs <= 1
        assert r.act_correlation is not None
    # a group reads the activation after its ReLU: never negative
    assert all(r.never_positive == r.dead for r in d.groups if r.source in ("2", "5", "8"))


def test_mlp_records_and_duplicate_neurons():
    model = mlp()
    with torch.no_grad():
        model[1].weight[5] = model[1].weight[2]
        model[1].bias[5] = model[1].bias[2]
    x = torch.randn(64, 20, generator=torch.Generator().manual_seed(2))
    d = diagnose(model, x, groups=False)
    assert [r.name for r in d.layers] == ["1", "3", "5"] and d.groups == []
    hidden = d.layers[0]
    assert hidden.weight_cosine.duplicates == 1
    assert hidden.act_correlation.duplicates == 1  # identical neurons, identical outputs
    assert hidden.erank <= 15 + 1e-6  # one direction is a copy


def test_dead_counts_exactly_the_zeroed_channels():
    model = small_cnn()
    with torch.no_grad():
        model[4].weight[[1, 6]] = 0.0
        model[4].bias[[1, 6]] = 0.0
        model[7].bias.fill_(100.0)  # every neuron fires ...
        model[7].bias[3] = -100.0  # ... but this one: dead after the ReLU
    d = diagnose(model, images())
    conv = {r.name: r for r in d.layers}["4"]
    assert conv.dead == 2 and conv.dead_fraction == pytest.approx(2 / 8)
    assert conv.weight_cosine.valid == 6  # the zero filters have no direction
    groups = {r.name: r for r in d.groups}
    assert groups["4"].dead == 2
    fc = {r.name: r for r in d.layers}["7"]
    assert fc.never_positive == 1 and fc.dead == 0
    assert groups["7"].dead == 1  # the group reads the activation after the ReLU


def test_model_is_left_unchanged():
    model = small_cnn().train()
    before = copy.deepcopy(model.state_dict())
    diagnose(model, images())
    assert model.training and all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats untouched
    assert not any(m._forward_hooks for m in model.modules())


def test_json_round_trip():
    d = diagnose(small_cnn(), images())
    back = Diagnosis.from_json(d.to_json())
    assert back == d
    assert back.summary()["erank_ratio"] == pytest.approx(d.summary()["erank_ratio"])
    with pytest.raises(ValueError, match="diagnosis"):
        Diagnosis.from_dict({"layers": []})


def test_bad_input_gives_clear_errors():
    model = small_cnn()
    with pytest.raises(ValueError, match="calibration"):
        diagnose(model, [])
    with pytest.raises(ValueError, match="calibration"):
        diagnose(model, None)
    with pytest.raises(ValueError, match="calibration"):
        diagnose(model, torch.empty(0, 1, 8, 8))
    with pytest.raises(ValueError, match="no Conv/Linear"):
        diagnose(nn.Sequential(nn.ReLU()), images())
    with pytest.raises(TypeError, match="model"):
        diagnose("not a model", images())
    with pytest.raises(ValueError, match="threshold"):
        diagnose(model, images(), threshold=1.5)
    model.train()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match="run through"):
        diagnose(model, torch.randn(2, 3, 8, 8), groups=False)
    assert model.training and not any(m._forward_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_html_fragment_and_report_section(tmp_path):
    from prunekit.report import render_html

    d = diagnose(small_cnn(), images())
    png = plot_diagnosis(d, tmp_path / "diag.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    fragment = diagnosis_html(d, {"per layer": png})
    for r in d.records:
        assert f"<td>{r.name}</td>" in fragment
    assert "data:image/png;base64," in fragment
    page = render_html({"title": "run"}, sections={"Redundancy <diagnosis>": fragment})
    assert "<h2>Redundancy &lt;diagnosis&gt;</h2>" in page and fragment in page
    assert page.index("Redundancy") < page.index("<h2>Plan</h2>")
    assert "Redundancy" not in render_html({"title": "run"})  # optional


def test_table_renders():
    from rich.console import Console

    d = diagnose(mlp(), torch.randn(16, 20), groups=False)
    console = Console(record=True, width=160)
    console.print(d.table())
    assert "linear" in console.export_text()
    with pytest.raises(ValueError, match="kind"):
        d.table("nope")


class TinyResidual(nn.Module):
    """conv-BN-ReLU, conv-BN, + skip, the *same* ReLU again, global pool, FC."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(8, 4)

    def forward(self, x):
        h = self.relu(self.bn1(self.conv1(x)))
        h = self.relu(self.bn2(self.conv2(h)) + h)
        return self.fc(self.pool(h).flatten(1))


def test_group_reads_full_resolution_activation_not_the_global_pool():
    torch.manual_seed(0)
    model = TinyResidual()
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    d = diagnose(model, x)
    (stream,) = [r for r in d.groups if r.channels == 8]  # conv1 + conv2 + skip: one group
    assert stream.source in ("bn2", "relu")  # not "pool": 6 rows for 8 channels
    assert stream.rows == 6 * 8 * 8
    assert stream.erank > 1.0


def test_unused_and_too_wide_layers_are_noted():
    class WithSpare(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.spare = mlp(), nn.Linear(3, 3)  # spare: never called

        def forward(self, x):
            return self.net(x)

    d = diagnose(WithSpare(), torch.randn(8, 20), groups=False, max_channels=10)
    by_name = {r.name: r for r in d.layers}
    assert by_name["spare"].erank is None and by_name["spare"].weight_cosine is not None
    assert by_name["net.1"].erank is None  # 16 outputs > max_channels
    assert by_name["net.5"].erank is not None
    assert any("spare: not called" in n for n in d.notes)
    assert any("net.1: activation wider" in n for n in d.notes)


def test_report_with_a_diagnosis_shows_it_when_written_and_re_rendered(tmp_path):
    from prunekit.report import write_report

    d = diagnose(small_cnn(), images())
    written = write_report(tmp_path, {"title": "run", "diagnosis": d.to_dict()},
                           draw_plots=False)
    page = written["html"].read_text(encoding="utf-8")
    assert "<h2>Redundancy and collapse</h2>" in page
    assert all(f"<td>{r.name}</td>" in page for r in d.records)
    plain = write_report(tmp_path / "b", {"title": "run"}, draw_plots=False)
    assert "Redundancy" not in plain["html"].read_text(encoding="utf-8")
