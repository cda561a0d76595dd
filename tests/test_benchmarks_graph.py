"""benchmarks/zoo_coverage.py and mac_counter.py run end to end in smoke mode (never rot);
the incumbent is configured as its docs say (every final layer ignored, num_heads)."""

import json
import sys

import torch
import torchvision
from support import BENCHMARKS, load_benchmark

sys.path.insert(0, str(BENCHMARKS.parent))  # the repo root: `benchmarks` as a package

from benchmarks.harness import incumbents  # noqa: E402


def test_coverage_smoke_shards_and_combine(tmp_path):
    module = load_benchmark("zoo_coverage")
    out = tmp_path / "coverage.json"
    module.main(["--smoke", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert payload["machine"]["torch"] and payload["provenance"]["complete"]
    rows = {(r["model"], r["tool"]): r for r in payload["results"]}
    assert rows[("torchvision/shufflenet_v2_x0_5", "prunekit")]["status"] == "ok"
    assert rows[("hf/bert", "prunekit")]["mac_reduction"] >= 1.5
    assert {r["tool"] for r in payload["results"]} == {"prunekit", "torch_pruning"}
    tp = rows[("torchvision/shufflenet_v2_x0_5", "torch_pruning")]
    if tp["status"] == "ok":
        assert tp["config"]["ignored_layers"] == ["Linear"]
    combined = tmp_path / "combined.json"
    res = module.main(["--combine", str(out), "--out", str(combined)])
    assert res["summary"] == payload["summary"]
    assert json.loads(combined.read_text())["combined_from"][0]["command"].startswith(
        "python benchmarks/zoo_coverage.py --smoke")
    assert module.shard_of(list("abcdefg"), "2/3") == ["b", "e"]


def test_final_layers_whatever_their_type():
    sq = torchvision.models.squeezenet1_0()
    assert incumbents.final_layers(sq, torch.randn(1, 3, 64, 64)) == [sq.classifier[1]]
    two = torch.nn.ModuleDict({"a": torch.nn.Linear(4, 3), "b": torch.nn.Linear(4, 2)})

    class TwoHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.heads = torch.nn.Linear(4, 4), two

        def forward(self, x):
            h = torch.relu(self.body(x))
            return self.heads["a"](h), self.heads["b"](h).flatten()

    model = TwoHeads()
    assert set(incumbents.final_layers(model, torch.randn(2, 4))) == {two["a"], two["b"]}
    mha = torch.nn.MultiheadAttention(8, 2)
    assert incumbents.attention_heads(torch.nn.Sequential(mha)) == {mha: 2}


def test_mac_counter_smoke(tmp_path):
    out = tmp_path / "macs.json"
    res = load_benchmark("mac_counter").main(["--smoke", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["provenance"]["complete"] and len(saved["models"]) == 2
    assert res["summary"]["n_models"] == 2
    assert all(m["counts"]["prunekit"] > 0 for m in saved["models"])


def test_coverage_names_what_prunekit_left_whole_and_why():
    module = load_benchmark("zoo_coverage")
    from benchmarks import readme

    skipped = [{"reason": "group 'g1' left whole: cutting it changes the outputs beyond what "
                          "removing its channels means (...)"},
               {"reason": "group 'g2' left whole: cutting it fails (shape)"},
               {"op": "aten.foo", "reason": "unsupported op"}]
    rows = [{"model": "a", "tool": "prunekit", "status": "ok", "mac_reduction": 2.0,
             "skipped": skipped},
            {"model": "a", "tool": "torch_pruning", "status": "fail"},
            {"model": "b", "tool": "prunekit", "status": "ok", "mac_reduction": 2.0},
            {"model": "b", "tool": "torch_pruning", "status": "ok", "mac_reduction": 2.0}]
    assert module.left_whole(rows[0]) == {"value check": 1, "cut fails": 1, "barrier": 1}
    summ = module.summary(rows)
    assert summ["prunekit"]["left_whole_models"]["value check"] == ["a"]
    assert summ["torch_pruning"]["status"] == {"fail": 1, "ok": 1}
    doc = {"summary": summ, "table": {"columns": module.COLUMNS,
                                      "rows": module.table_rows(rows)}}
    text = readme.RENDERERS["coverage"](doc)
    assert "prunekit ok on **2 of 2**" in text and "Torch-Pruning" in text
    assert "value check: 1 model(s) (a)" in text
    differ = text.split("<details>")[0]
    assert "| a |" in differ and "| b |" not in differ  # b: both ok, nothing left whole
