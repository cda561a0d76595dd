"""benchmarks/training_methods.py, structured_seeds.py and pooling_speed.py: smoke runs
under the rules (same total epochs, matched or interpolated MACs, selection on validation,
one test read per reported number) and the verdict over seeds."""

import json

import pytest
from support import load_benchmark


@pytest.mark.slow
def test_training_methods_structured_smoke(tmp_path):
    pytest.importorskip("torch_pruning")
    bench = load_benchmark("training_methods")
    out = tmp_path / "structured.json"
    res = bench.main(["--smoke", "--part", "structured", "--out", str(out),
                      "--img-dir", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved["provenance"]["config"]["part"] == "structured"
    rows = res["structured"]
    dense, gl = rows[0], rows[1]
    assert dense["method"] == "dense" and gl["role"] == "prunekit"
    assert gl["macs"] < 0.5 * dense["macs"]  # budget 1/4 of the MACs
    tps = [r for r in rows if r.get("role") == "incumbent" and r["level"] == gl["level"]]
    match = {r["match"] for r in tps}
    assert match in ({"within 1 %"}, {"bracket", "interpolated"})
    if "within 1 %" in match:
        assert tps[0]["macs"] == pytest.approx(gl["macs"], rel=0.01)
    else:
        lo, hi = next(r for r in tps if r["match"] == "interpolated")["interpolated_between"]
        assert lo <= gl["macs"] < hi
    for cmp in saved["comparisons"]:  # the same total epochs for both methods
        assert set(cmp["spent"].values()) == {cmp["budget"]} == {2}
    reads = saved["splits"]["test_reads"]
    assert len(reads) == len(set(reads)) == sum(1 for r in rows if "claim" in r)
    assert all(r["measured_speedup"] > 0 for r in rows if "measured_speedup" in r)
    assert (tmp_path / "training_structured_s0_smoke.png").stat().st_size > 0


def test_unequal_grids_refuse_before_training(tmp_path):
    bench = load_benchmark("training_methods")
    with pytest.raises(SystemExit, match="equal grids"):
        bench.main(["--smoke", "--part", "structured", "--out", str(tmp_path / "x.json"),
                    "--gl-grid", "min_keep_rel=0.7,0.8,0.9"])
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_training_methods_unstructured_selects_lr_on_validation(tmp_path):
    out = tmp_path / "u.json"
    res = load_benchmark("training_methods").main(["--smoke", "--part", "unstructured",
                                                   "--out", str(out)])
    rows = res["unstructured"]
    assert {r["method"] for r in rows} == {"torch.nn.utils.prune global magnitude",
                                           "prunekit global, cubic ramp over 30 % + weight "
                                           "averaging"}
    for row in rows:
        assert row["weights"] / row["nonzero_weights"] == pytest.approx(
            row["target_compression"], rel=0.02)
        assert row["lr"] in (1e-3, 2e-3) and len(row["selection"]["scores"]) == 2
    saved = json.loads(out.read_text())
    grids = {json.dumps(m["grid"]) for c in saved["comparisons"] for m in c["methods"]}
    assert len(grids) == 1  # the same lr grid for every method


def write_run(bench, tmp_path, seed, acc):
    """A harness-written structured result of seed ``seed``; acc: level -> (gl, tp)."""
    from benchmarks import harness

    out = tmp_path / f"s{seed}.json"
    args = bench_tm_args(seed, out)
    rows = [{"method": "dense", "accuracy": 0.88, "level": ""}]
    for level, (gl, tp) in acc.items():
        rows += [{"method": "GL", "role": "prunekit", "accuracy": gl, "level": level,
                  "macs": 100},
                 {"method": "TP", "role": "incumbent", "accuracy": tp + 0.5, "level": level,
                  "macs": 100, "match": "bracket", "matched_to": "GL"},
                 {"method": "TP", "role": "incumbent", "accuracy": tp, "level": level,
                  "macs": 100, "match": "within 1 %", "matched_to": "GL"}]
    with harness.session(args) as rec:
        rec.write(out, {"structured": rows})
    return out


def bench_tm_args(seed, out):
    return load_benchmark("training_methods").parse(["--part", "structured", "--seed",
                                                     str(seed), "--out", str(out)])


def test_structured_seeds_pairs_and_says_a_verdict_only_on_five_seeds(tmp_path):
    bench = load_benchmark("structured_seeds")
    files = [write_run(bench, tmp_path, s, {"4x MACs": (0.876 + 0.001 * s, 0.874),
                                            "16x MACs": (0.85, 0.84 + 0.004 * s)})
             for s in range(5)]
    files.append(write_run(bench, tmp_path, 5, {"4x MACs": (0.880, 0.874)}))
    res = bench.main([*map(str, files), "--out", str(tmp_path / "o.json"),
                      "--img-dir", str(tmp_path)])
    four, sixteen = res["levels"]
    assert four["level"] == "4x MACs" and four["seeds"] == [0, 1, 2, 3, 4, 5]
    assert four["delta_pt"][:2] == pytest.approx([0.2, 0.3]) and four["verdict"] == "ahead"
    assert sixteen["n"] == 5 and sixteen["verdict"] == "tie"  # 1.0, .6, .2, -.2, -.6
    saved = json.loads((tmp_path / "o.json").read_text())
    assert len(saved["sources"]) == 6 and saved["sources"][0]["command"].endswith(
        f"--out {files[0]}")
    few = bench.main([*map(str, files[:3]), "--out", str(tmp_path / "few.json"),
                      "--img-dir", str(tmp_path)])
    assert few["levels"][0]["verdict"] == "no verdict (3 seeds < 5)"
    (tmp_path / "legacy.json").write_text(json.dumps({"structured": []}))
    with pytest.raises(SystemExit, match="legacy"):
        bench.main([str(tmp_path / "legacy.json"), "--out", str(tmp_path / "l.json"),
                    "--img-dir", str(tmp_path)])
    assert (tmp_path / "training_structured_seeds.png").stat().st_size > 0


def test_pooling_speed_smoke(tmp_path):
    out = tmp_path / "p.json"
    res = load_benchmark("pooling_speed").main(["--smoke", "--out", str(out),
                                                "--img-dir", str(tmp_path)])
    saved = json.loads(out.read_text())
    assert saved["machine"] and len(saved["pooling"]) == 2 and saved["lenet5"]
    for r in res["lenet5"]:
        assert r["mac_reduction"] > 1 and r["eager"]["rho"] > 0 and r["fast_pool"]["rho"] > 0
        assert len(r["eager"]["timing"]["models"]["dense"]["samples_ms"]) == 2  # rounds kept
    assert (tmp_path / "pooling_speed.png").stat().st_size > 0


def test_seed_pairs_of_unstructured_and_lottery_runs():
    bench = load_benchmark("structured_seeds")
    prov = {"provenance": {"config": {"seed": 3}}}
    base = "torch.nn.utils.prune global magnitude"
    un = bench.pairs({**prov, "unstructured": [
        {"method": base, "target_compression": 10.0, "accuracy": 0.87},
        {"method": "prunekit recipe", "target_compression": 10.0, "accuracy": 0.88}]})
    assert [(p["level"], p["method"], p["seed"]) for p in un] == [
        ("10x weights", "prunekit recipe", 3)]
    assert un[0]["delta_pt"] == pytest.approx(1.0)
    (lt,) = bench.pairs({**prov, "lottery": {"fraction": 0.05, "dense_accuracy": 0.85,
                                             "ticket_accuracy": 0.84,
                                             "reinit_accuracy": 0.81}})
    assert lt["level"] == "5% weights" and lt["delta_pt"] == pytest.approx(3.0)
