"""The benchmark harness: every fairness rule refuses or marks what breaks it; the one JSON
writer records provenance and refuses files another command wrote; timing keeps every
reading; splits count test reads."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS.parent))  # the repo root: `benchmarks` as a package

from benchmarks import harness  # noqa: E402
from benchmarks.harness import record, rules, splits, tables, timing  # noqa: E402
from benchmarks.harness.rules import Comparison, Method, RuleViolation  # noqa: E402


def two(budget_a=8, budget_b=8, grid_a=None, grid_b=None, **kw) -> Comparison:
    return Comparison("lenet5 8x", [Method("prunekit", budget_a, grid_a or {}),
                                    Method("torch-pruning", budget_b, grid_b or {},
                                           incumbent=True)], "epochs", **kw)


# ---------------------------------------------------------------- rules
def test_unequal_budgets_refuse_naming_the_rule():
    with pytest.raises(RuleViolation, match="equal budgets") as err:
        two(budget_a=8, budget_b=5)
    assert err.value.rule == "equal budgets" and "torch-pruning" in str(err.value)


def test_unequal_grid_sizes_refuse():
    with pytest.raises(RuleViolation, match="equal grids"):
        two(grid_a={"lam": [0.1, 0.3, 1.0]}, grid_b={"lr": [1e-3, 2e-3]})
    ok = two(grid_a={"lam": [0.1, 0.3, 1.0]}, grid_b={"lr": [1e-3, 2e-3, 4e-3]})
    assert [m.grid_size for m in ok.methods] == [3, 3]


def test_bad_declarations_are_value_errors():
    with pytest.raises(ValueError, match="budget_kind"):
        Comparison("x", [Method("a", 1), Method("b", 1)], "hours")
    with pytest.raises(ValueError, match="distinct"):
        Comparison("x", [Method("a", 1), Method("a", 1)], "epochs")
    with pytest.raises(ValueError, match="budget"):
        Method("a", 0)
    with pytest.raises(ValueError, match="grid"):
        Method("a", 1, {"lam": []})


def test_selection_at_a_grid_edge_marks_the_result_invalid():
    cmp = two(grid_a={"lam": [0.1, 0.3, 1.0]}, grid_b={"lr": [1e-3, 2e-3, 4e-3]})
    edge = cmp.select("prunekit", [({"lam": 0.1}, 0.80), ({"lam": 0.3}, 0.79),
                                   ({"lam": 1.0}, 0.70)])
    assert edge.values == {"lam": 0.1} and edge.at_edge == ["lam"]
    inner = cmp.select("torch-pruning", [({"lr": 1e-3}, 0.7), ({"lr": 2e-3}, 0.8),
                                         ({"lr": 4e-3}, 0.75)])
    assert inner.interior
    validity = cmp.validity()
    assert validity["valid"] is False
    assert "prunekit" in validity["reasons"][0] and rules.EDGE_NOTE in validity["reasons"][0]
    assert cmp.to_dict()["choices"]["prunekit"]["note"] == rules.EDGE_NOTE


def test_selection_lower_is_better_and_categorical_grids_have_no_edge():
    cmp = two(grid_a={"recipe": ["a", "b", "c"]}, grid_b={"lr": [1, 2, 3]})
    choice = cmp.select("prunekit", [({"recipe": "a"}, 0.3), ({"recipe": "b"}, 0.1),
                                     ({"recipe": "c"}, 0.2)], higher_is_better=False)
    assert choice.values == {"recipe": "b"} and choice.interior
    assert rules.grid_edges({"lam": [1, 2]}, {"lam": 2}) == ["lam"]  # no interior in 2


def test_selection_must_cover_the_whole_grid():
    cmp = two(grid_a={"lam": [0.1, 0.3, 1.0]}, grid_b={"lr": [1, 2, 3]})
    with pytest.raises(RuleViolation, match="equal grids"):
        cmp.select("prunekit", [({"lam": 0.1}, 0.8), ({"lam": 0.3}, 0.9)])


def test_spending_is_checked_against_the_budget():
    cmp = two()
    cmp.spend("prunekit", 3)
    cmp.spend("prunekit", 5)
    with pytest.raises(RuleViolation, match="over the budget"):
        cmp.spend("torch-pruning", 9)
    cmp.spend("torch-pruning", 5)
    with pytest.raises(RuleViolation, match="equal budgets"):
        cmp.check_spent()  # Torch-Pruning got 5 of 8 epochs
    cmp.spend("torch-pruning", 3)
    cmp.check_spent()
    with pytest.raises(KeyError):
        cmp.spend("nobody", 1)


def test_matched_macs_within_one_percent():
    cmp = two(matched_macs=True)
    assert cmp.check_macs({"prunekit": 1000, "torch-pruning": 1009})["gap"] < 0.01
    with pytest.raises(RuleViolation, match="matched MACs"):
        cmp.check_macs({"prunekit": 1000, "torch-pruning": 1020})
    with pytest.raises(ValueError, match="matched_macs"):
        two().check_macs({"prunekit": 1, "torch-pruning": 1})


def test_verdict_needs_five_seeds_and_two_standard_errors():
    with pytest.raises(RuleViolation, match="at least 5"):
        rules.verdict([1.0, 1.0, 1.0, 1.0])  # the old "ahead on 6 of 6" needs the SE too
    assert rules.verdict([0.4, 0.5, 0.6, 0.5, 0.4]) == "ahead"
    assert rules.verdict([-0.4, -0.5, -0.6, -0.5, -0.4]) == "behind"
    assert rules.verdict([0.5, -0.4, 0.3, -0.2, 0.1]) == "tie"
    mean, se = rules.mean_se([0.1, 0.3, 0.2, 0.1, 0.3])
    assert rules.verdict([0.1, 0.3, 0.2, 0.1, 0.3]) == ("ahead" if mean > 2 * se else "tie")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=5, max_size=12))
def test_verdict_is_antisymmetric(deltas):
    flipped = {"ahead": "behind", "behind": "ahead", "tie": "tie"}
    assert rules.verdict([-d for d in deltas]) == flipped[rules.verdict(deltas)]


def test_paired_deltas_need_the_same_seeds():
    assert rules.paired_deltas({0: 0.9, 1: 0.8}, {1: 0.7, 0: 0.85}) == pytest.approx([0.05, 0.1])
    with pytest.raises(RuleViolation, match="paired seeds"):
        rules.paired_deltas({0: 0.9}, {1: 0.8})


# ---------------------------------------------------------------- splits
def test_validation_is_carved_from_training_and_test_is_read_once():
    x = torch.arange(200).float().unsqueeze(1)
    y = torch.arange(200) % 4
    test = (torch.zeros(10, 1), torch.zeros(10, dtype=torch.long))
    s = splits.carve((x, y), test, val_fraction=0.2, seed=3)
    tr, va = set(s.train[0].squeeze(1).tolist()), set(s.val[0].squeeze(1).tolist())
    assert not tr & va and len(tr | va) == 200 and len(va) == 40
    assert torch.bincount(s.val[1]).tolist() == [10, 10, 10, 10]  # stratified
    assert s.test("lenet5 8x prunekit seed 0")[0] is test[0]
    with pytest.raises(RuleViolation, match="test read once"):
        s.test("lenet5 8x prunekit seed 0")
    assert s.evaluate("other number", lambda d: len(d[0])) == 10.0
    assert s.to_dict()["test_reads"] == ["lenet5 8x prunekit seed 0", "other number"]
    again = splits.carve((x, y), test, val_fraction=0.2, seed=3)
    assert torch.equal(again.val[0], s.val[0])  # seeded


def test_carve_rejects_bad_fractions_and_works_on_arrays():
    import numpy as np

    with pytest.raises(ValueError, match="val_fraction"):
        splits.carve((torch.zeros(4), torch.zeros(4)), (None,), val_fraction=1.0)
    s = splits.carve((np.arange(30), np.arange(30) % 3), (np.arange(5),), 0.3, stratify=False)
    assert s.sizes == {"train": 21, "val": 9, "test": 5}


# ---------------------------------------------------------------- args and record
def parse(argv, name="demo_bench"):
    p = harness.parser(name, "A demo benchmark.\n\nMore.")
    p.add_argument("--lam", type=float, default=0.1)
    p.add_operational("--progress", action="store_true")
    return p.parse(argv)


def test_args_record_the_command_and_identity(tmp_path):
    args = parse(["--lam", "0.3", "--progress", "--out", str(tmp_path / "a.json")])
    assert args.command.startswith("python benchmarks/demo_bench.py --lam 0.3 --progress")
    ident = harness.args.identity(args)
    assert ident["config"]["lam"] == 0.3 and "progress" not in ident["config"]
    assert "out" not in ident["config"] and "img_dir" not in ident["config"]
    assert harness.out_path(parse(["--smoke"])).name == "demo_bench_smoke.json"
    assert harness.out_path(parse([])) == harness.RESULTS / "demo_bench.json"
    assert parse([]).img_dir == harness.IMG and parse(["--smoke"]).img_dir is None


def test_writer_records_provenance(tmp_path):
    out = tmp_path / "r.json"
    args = parse(["--out", str(out)])
    with harness.session(args) as run:
        cmp = two(grid_a={"lam": [1, 2, 3]}, grid_b={"lr": [1, 2, 3]})
        cmp.select("prunekit", [({"lam": v}, s) for v, s in ((1, 0.1), (2, 0.3), (3, 0.2))])
        data = splits.carve((torch.zeros(20, 1), torch.arange(20) % 2), (torch.zeros(3),))
        data.test("n")
        run.write(out, {"rows": [1, 2]}, comparison=cmp, splits=data)
    doc = json.loads(out.read_text())
    prov = doc["provenance"]
    assert prov["command"] == args.command and prov["complete"] is True
    assert set(prov["git"]) >= {"commit", "dirty", "changed"}
    assert prov["started"] <= prov["written"]
    assert len(prov["load_average"]["start"]) == 3 and len(prov["load_average"]["written"]) == 3
    assert torch.__version__.startswith(doc["machine"]["versions"]["torch"])
    assert doc["machine"]["threads"]["torch_intra_op"] >= 1 and doc["machine"]["cpu"]
    assert doc["machine"]["cores_usable"] >= 1
    assert doc["comparisons"][0]["choices"]["prunekit"]["values"] == {"lam": 2}
    assert doc["validity"]["valid"] and doc["splits"]["test_reads"] == ["n"]
    assert doc["rows"] == [1, 2] and record.status(doc) == "ok"


def test_writer_refuses_a_file_another_command_wrote(tmp_path):
    out = tmp_path / "r.json"
    with harness.session(parse(["--out", str(out)])) as run:
        run.write(out, {"rows": []}, complete=False)
        run.write(out, {"rows": [1]})  # the same run again: its own checkpoint
    with harness.session(parse(["--out", str(out), "--progress"])) as run:
        run.write(out, {"rows": [2]})  # the same computation (operational flag only)
    before = out.read_text()
    with harness.session(parse(["--lam", "0.5", "--out", str(out)])) as run:
        with pytest.raises(harness.ProvenanceError, match="lam 0.1 → 0.5"):
            run.write(out, {"rows": [3]})
    assert out.read_text() == before  # refused: nothing written, nothing merged
    with harness.session(parse(["--out", str(out)], name="other_bench")) as run:
        with pytest.raises(harness.ProvenanceError, match="script"):
            run.write(out, {"rows": []})


def test_writer_refuses_hand_made_files_and_reserved_keys(tmp_path):
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"machine": {}, "rows": [1]}))
    assert record.status(json.loads(legacy.read_text())) == "legacy"
    with harness.session(parse(["--out", str(legacy)])) as run:
        with pytest.raises(harness.ProvenanceError, match="not written by a harness"):
            run.write(legacy, {"rows": []})
        with pytest.raises(ValueError, match="reserved"):
            run.write(tmp_path / "new.json", {"machine": 1})


def test_status_partial_and_invalid(tmp_path):
    out = tmp_path / "p.json"
    with harness.session(parse(["--out", str(out)])) as run:
        run.write(out, {"rows": []}, complete=False)
        assert record.status(json.loads(out.read_text())) == "partial"
        cmp = two(grid_a={"lam": [1, 2, 3]}, grid_b={"lr": [1, 2, 3]})
        cmp.select("prunekit", [({"lam": v}, v) for v in (1, 2, 3)])  # best at the edge
        fine = two()
        run.write(out, {"rows": []}, comparison=[fine, cmp])
    doc = json.loads(out.read_text())
    assert record.status(doc) == "invalid" and len(doc["comparisons"]) == 2
    assert doc["validity"]["reasons"] == cmp.validity()["reasons"]


def test_session_seeds_and_restores_threads():
    before = torch.get_num_threads()
    args = parse(["--seed", "7", "--threads", "1"])
    with harness.session(args):
        assert torch.get_num_threads() == 1
        a = torch.rand(3)
    with harness.session(args):
        b = torch.rand(3)
    assert torch.equal(a, b) and torch.get_num_threads() == before


# ---------------------------------------------------------------- timing and tables
def test_paired_timing_alternates_and_keeps_every_reading():
    models = {"dense": torch.nn.Linear(8, 8), "pruned": torch.nn.Linear(8, 4),
              "other": torch.nn.Linear(8, 2)}
    res = timing.paired(models, torch.rand(2, 8), rounds=3, repeats=4, warmup=0, threads=1)
    assert res.order == [["dense", "pruned", "other"], ["other", "pruned", "dense"],
                         ["dense", "pruned", "other"]]
    for r in res.readings.values():
        assert len(r.rounds) == 3 and len(r.samples_ms) == 12
    sp = res.speedup("dense", "pruned")
    assert len(sp["round_ratios"]) == 3 and sp["min"] <= sp["max"]
    assert sp["speedup"] == pytest.approx(res.median_ms("dense") / res.median_ms("pruned"))
    saved = res.to_dict()
    assert len(saved["models"]["other"]["samples_ms"]) == 3
    assert saved["models"]["dense"]["summary_ms"]["n"] == 12
    with pytest.raises(ValueError, match="rounds"):
        timing.paired(models, torch.rand(2, 8), rounds=0)


def test_paired_timing_places_per_spec_and_stretches_fast_models():
    from prunekit.hardware import DeviceSpec

    model = torch.nn.Linear(4, 4)
    res = timing.paired({"a": model, "b": torch.nn.Linear(4, 4)}, torch.rand(1, 4), rounds=2,
                        repeats=2, warmup=0, spec=DeviceSpec("cpu", 1, torch.float64),
                        min_total_ms=5.0, max_repeats=6)
    assert res.config["spec"]["dtype"] == "torch.float64"
    assert 2 <= res.config["repeats"]["a"] <= 6
    assert model.weight.dtype == torch.float32  # the caller's model is untouched


def test_tables_median_and_spread():
    s = tables.summary([3.0, 1.0, 2.0, 10.0])
    assert (s["median"], s["min"], s["max"], s["n"]) == (2.5, 1.0, 10.0, 4)
    assert tables.median_spread([1.0, 2.0, 3.0], ".1f", " s") == "2.0 s (1.0–3.0, n=3)"
    assert tables.markdown(["a", "b"], [[1.23456, None]]).splitlines() == [
        "| a | b |", "|---|---|", "| 1.23 | — |"]
    with pytest.raises(ValueError):
        tables.summary([])


def test_dirty_counts_only_files_the_run_loaded():
    loaded = record.loaded_files()
    assert "benchmarks/harness/record.py" in loaded and "prunekit/__init__.py" in loaded
    git = {"commit": "abc", "changed": ["README.md", "benchmarks/harness/record.py"]}
    marked = record.dirty_for_this_run(git)
    assert marked["dirty"] is True and marked["dirty_files"] == ["benchmarks/harness/record.py"]
    assert record.dirty_for_this_run({"commit": "abc", "changed": ["docs/x.md"]})["dirty"] is False
    assert record.dirty_for_this_run({"commit": None, "changed": None})["dirty"] is None
