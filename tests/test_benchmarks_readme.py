"""README numbers are generated: `python -m benchmarks.readme` writes the result blocks from
the result files, `--check` fails when the README differs, and only a harness-written,
complete, valid file yields a table."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from support import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS.parent))  # the repo root: `benchmarks` as a package

from benchmarks import claims, harness, readme  # noqa: E402
from benchmarks.harness.rules import Comparison, Method  # noqa: E402

ROOT = BENCHMARKS.parent


def test_the_readme_matches_the_result_files():
    assert readme.main(["--check"]) == 0


def test_every_claim_has_one_block_and_a_known_renderer():
    text = (ROOT / "README.md").read_text()
    for c in claims.CLAIMS:
        assert text.count(f"<!-- results:{c.name} -->") == 1
        assert c.renderer is None or c.renderer in readme.RENDERERS
    with pytest.raises(ValueError, match="phase"):
        claims.Claim("x", "x", "cmd", "x.json", "maybe", "1 min")


def copy_root(tmp_path):
    for rel in ("README.md", "benchmarks/README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "benchmarks" / "results").mkdir()
    return tmp_path


def write_hierarchy(root, edge: bool):
    """A harness-written hierarchy result (the real file's shape, tiny)."""
    out = root / "benchmarks" / "results" / "hierarchy.json"
    args = harness.parser("hierarchy", "h").parse(["--out", str(out)])
    cmp = Comparison("hierarchy x", [Method("tree", 3, {"alpha": [1.0, 2.0, 3.0]}),
                                     Method("l1", 3, {"alpha": [1.0, 2.0, 3.0]})], "fits")
    cmp.select("tree", [({"alpha": a}, s) for a, s in ((1.0, 0.5), (2.0, 0.9), (3.0, 0.6))])
    cmp.select("l1", [({"alpha": a}, s) for a, s in ((1.0, 0.5), (2.0, 0.6),
                                                      (3.0, 0.9 if edge else 0.1))])
    with harness.session(args) as rec:
        rec.write(out, {"config": {"grid_size": 3}, "table": {
            "columns": ["data", "method", "test accuracy"], "rows": [["x", "tree", 0.9123]]}},
            comparison=cmp)


def test_check_fails_until_the_blocks_are_rewritten(tmp_path, capsys):
    root = copy_root(tmp_path)
    write_hierarchy(root, edge=False)
    assert readme.main(["--check", "--root", str(root)]) == 1
    assert "README.md: hierarchy" in capsys.readouterr().err
    assert readme.main(["--root", str(root)]) == 0
    text = (root / "README.md").read_text()
    block = text.split("<!-- results:hierarchy -->")[1].split("<!-- /results:hierarchy -->")[0]
    assert "| x | tree | 0.912 |" in block and "python benchmarks/hierarchy.py" in block
    assert "regenerated" in (root / "benchmarks" / "README.md").read_text()
    assert readme.main(["--check", "--root", str(root)]) == 0


def test_invalid_legacy_and_missing_files_get_no_numbers(tmp_path):
    root = copy_root(tmp_path)
    write_hierarchy(root, edge=True)
    hier = claims.by_name("hierarchy")
    results = root / "benchmarks" / "results"
    block = readme.claim_block(hier, results)
    assert "Not yet re-run under the fair harness" in block and "grid edge" in block
    assert "0.912" not in block
    (results / "hierarchy.json").write_text(json.dumps({"machine": {}, "table": {}}))
    assert "predates the harness" in readme.claim_block(hier, results)
    (results / "hierarchy.json").unlink()
    assert "no result file yet" in readme.claim_block(hier, results)


def test_render_refuses_unknown_or_missing_blocks():
    text = "a\n<!-- results:one -->\nold\n<!-- /results:one -->\nb\n"
    assert readme.render(text, {"one": "new\n"}, "X") == \
        "a\n<!-- results:one -->\nnew\n<!-- /results:one -->\nb\n"
    with pytest.raises(SystemExit, match="missing blocks \\['two'\\]"):
        readme.render(text, {"one": "x\n", "two": "y\n"}, "X")
    with pytest.raises(SystemExit, match="unknown result blocks \\['one'\\]"):
        readme.render(text, {}, "X")


def test_bench_smoke_covers_every_benchmark_script():
    """``make bench-smoke`` runs every script with a smoke mode (a new one is not forgotten);
    every script builds its command line with the harness (none re-implements it)."""
    from benchmarks import smoke

    helpers = {"readme", "claims", "smoke", "structured_seeds", "__init__"}
    scripts = {p.stem for p in BENCHMARKS.glob("*.py")} - helpers
    assert scripts == set(smoke.RUNS)
    assert smoke.main(["no_such_benchmark"]) == 2
    for name in scripts | {"structured_seeds"}:
        text = (BENCHMARKS / f"{name}.py").read_text()
        assert "harness.parser(" in text and "ArgumentParser(" not in text, name
        assert ".write(" in text and "write_text(" not in text and "json.dump(" not in text


def test_seeds_renderer_says_where_prunekit_leads_ties_and_trails():
    level = {"method": "GL", "n": 5, "se_pt": 0.1}
    doc = {"kind": "training_methods_structured",
           "sources": [{"comparisons": [{"budget": 8, "budget_kind": "epochs", "methods": {
               "GL": {"grid_size": 1}, "TP": {"grid_size": 1}}}]}],
           "levels": [{**level, "level": "4x MACs", "mean_delta_pt": -0.5, "gl_wins": 0,
                       "verdict": "behind"},
                      {**level, "level": "8x MACs", "mean_delta_pt": 0.1, "gl_wins": 3,
                       "verdict": "tie"}],
           "table": {"columns": ["level"], "rows": [["4x MACs"], ["8x MACs"]]}}
    text = readme.RENDERERS["seeds"](doc)
    assert "prunekit behind at 4x MACs (-0.50 ± 0.10 pt, ahead on 0 of 5 seeds)" in text
    assert "tie (no difference shown) at 8x MACs" in text
    assert "8 epochs for every method" in text and "Neither side was tuned" in text
    doc["sources"][0]["comparisons"][0]["methods"]["TP"]["grid_size"] = 3
    assert "Neither side was tuned" not in readme.RENDERERS["seeds"](doc)


def test_heatmap_and_diagnose_renderers_show_their_numbers():
    cfg = {"n": 64, "block_size": 4, "ks": [4, 8], "ms": [8, 16], "trials": 6,
           "operator": "gaussian"}
    maps = {"heatmaps": {"block": {"config": cfg, "methods": ["l1", "block-mmp"],
                                   "m_at_90": {"l1": [16, None], "block-mmp": [8, 16]}}}}
    text = readme.RENDERERS["heatmaps"](maps)
    assert "*block-sparse*, n = 64, blocks of 4" in text
    assert "| l1 | 16 | > 16 |" in text and "| block-mmp | 8 | 16 |" in text
    rec = {"kept_fraction": 1.0, "params": 26162, "erank_ratio": 0.69, "dead_fraction": 0.1,
           "act_cosine_mean_abs": 0.4}
    sweep = {"sweep": {"collapse_drop": 0.02, "safe_lam": 0.001, "collapse_lam": 1.0},
             "test_accuracy": {"0": 0.875},
             "table": [{**rec, "lam": 0.0, "accuracy": 0.8125},
                       {**rec, "lam": 1.0, "accuracy": 0.125, "erank_ratio": None}]}
    text = readme.RENDERERS["diagnose"](sweep)
    assert "| 0 | 81.25 | 87.50 | 1 | 26,162 | 0.69 |" in text
    assert "| 1 | 12.50 | — |" in text and "Largest safe λ: 0.001" in text


def test_timed_renderers_say_the_load_and_mac_counter_names_disagreements():
    prov = {"provenance": {"load_average": {"start": [9.5, 9, 9], "written": [8.25, 8, 8]}},
            "machine": {"cores_usable": 2}}
    pool = {**prov, "pooling": [{"where": "pool 1", "shape": [256, 20, 24, 24], "kernel": 2,
                                 "stride": 2, "max_pool2d_ms": 100.0, "strided_ms": 20.0,
                                 "speedup": 5.0, "speedup_range": [4.5, 5.5]}],
            "table": {"columns": ["level"], "rows": [["4x MACs"]]}}
    text = readme.RENDERERS["pooling"](pool)
    assert "load average 9.5 at the start and 8.25 at the end on 2 cores" in text
    assert "| pool 1 | 256×20×24×24 | 2/2 | 100 | 20 | 5.00 (4.50–5.50) |" in text
    macs = {"config": {"tolerance": 0.01},
            "summary": {"n_models": 2, "within_1pct_flop_counter": 1,
                        "within_1pct_fvcore_matched": 2,
                        "within_1pct_flop_counter_and_(fvcore_matched_or_ptflops_aten)": 1,
                        "disagreements": {"vit": {"flop_counter": -0.05}}},
            "table": {"columns": ["model", "GMACs", "flop_counter"],
                      "rows": [["resnet", "1.0", "+0.00%"], ["vit", "2.0", "-5.00%"]]}}
    text = readme.RENDERERS["mac_counter"](macs)
    assert "flop_counter on 1 of 2, fvcore_matched on 2 of 2" in text
    assert text.split("<details>")[0].count("| vit |") == 1
    assert "| resnet |" not in text.split("<details>")[0]
