"""Over seeds: prunekit against the incumbent, paired per seed, with the verdict rule.

Works on any kind of per-seed result: ``training_methods.py --part unstructured`` (each
prunekit recipe vs torch's global magnitude at the same compression), ``--part lottery``
(ticket vs random re-init of the same mask), ``--part structured`` and ``training_vgg.py``
(as below); the summary is ``<kind>_seeds.json``.

``training_methods.py --part structured --seed S`` (and ``training_vgg.py --seed S``)
writes, per MAC level, each prunekit row and Torch-Pruning's row at the same MACs (within
1 %, or interpolated) with the same total epochs. This script reads one such file per
seed (each a complete, valid file written by its command under the harness; their
commands and commits are recorded here), pairs the two rows of every level and method,
and reports the differences ``Δ = acc(prunekit) − acc(Torch-Pruning)`` per seed, their
mean, the standard error ``SE = sd(Δ) / √n`` and the verdict of
``benchmarks.harness.rules.verdict``: "ahead" or "behind" only with ≥ 5 seeds and
|mean Δ| > 2 SE, else "tie" (fewer seeds: no verdict). JSON under
``benchmarks/results/`` and a PNG (each seed a dot, the mean ± 2 SE a bar).

Usage::

    R=benchmarks/results
    python benchmarks/structured_seeds.py $R/training_methods_structured_s{0,1,2,3,4}.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import plots, record, tables  # noqa: E402
from benchmarks.harness.rules import MIN_SEEDS, RuleViolation, mean_se, verdict  # noqa: E402


def pairs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The (prunekit, incumbent) pairs of one seed's result file, whatever its kind."""
    seed = doc["provenance"]["config"]["seed"]
    if "unstructured" in doc:
        return _unstructured_pairs(doc["unstructured"], seed)
    if "lottery" in doc:
        lt = doc["lottery"]
        return [_pair(seed, f"{100 * lt['fraction']:g}% weights", "lottery ticket",
                      lt["dense_accuracy"], lt["ticket_accuracy"], lt["reinit_accuracy"],
                      "random re-init, same mask")]
    return _structured_pairs(doc.get("structured") or doc.get("rows") or [], seed)


def _pair(seed, level, method, dense, ours, theirs, match) -> dict[str, Any]:
    return {"seed": seed, "level": level, "method": method, "dense": dense, "gl": ours,
            "tp": theirs, "match": match, "delta_pt": 100 * (ours - theirs)}


def _structured_pairs(rows: list[dict], seed: int) -> list[dict[str, Any]]:
    """Every prunekit row and the incumbent row standing for the same MACs."""
    dense = next(r["accuracy"] for r in rows if r["method"] == "dense")
    out = []
    for gl in (r for r in rows if r.get("role") == "prunekit"):
        tp = next((r for r in rows if r.get("role") == "incumbent"
                   and r["level"] == gl["level"] and r.get("matched_to") == gl["method"]
                   and r.get("match") in ("within 1 %", "interpolated")), None)
        if tp is not None:
            out.append(_pair(seed, gl["level"], gl["method"], dense, gl["accuracy"],
                             tp["accuracy"], tp["match"]))
    return out


def _unstructured_pairs(rows: list[dict], seed: int) -> list[dict[str, Any]]:
    """Every prunekit recipe against torch's global magnitude at the same compression."""
    base = {r["target_compression"]: r for r in rows if r["method"].startswith("torch.nn")}
    return [_pair(seed, f"{r['target_compression']:g}x weights", r["method"], None,
                  r["accuracy"], base[r["target_compression"]]["accuracy"], "same level")
            for r in rows if not r["method"].startswith("torch.nn")
            and r["target_compression"] in base]


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level: the seeds' Δ (points), mean, SE, the verdict, losses against dense."""
    keys = sorted({(r["level"], r["method"]) for r in rows},
                  key=lambda k: (float(k[0].split("x")[0]), k[1]))
    out = []
    for level, method in keys:
        at = sorted((r for r in rows if (r["level"], r["method"]) == (level, method)),
                    key=lambda r: r["seed"])
        d = [r["delta_pt"] for r in at]
        mean, se = mean_se(d)
        try:
            say = verdict(d)
        except RuleViolation:
            say = f"no verdict ({len(d)} seeds < {MIN_SEEDS})"
        out.append({"level": level, "method": method, "seeds": [r["seed"] for r in at],
                    "delta_pt": d,
                    "mean_delta_pt": mean, "se_pt": se, "verdict": say, "n": len(d),
                    "gl_wins": sum(x > 0 for x in d),
                    "gl_mean_acc": sum(r["gl"] for r in at) / len(at),
                    "incumbent_mean_acc": sum(r["tp"] for r in at) / len(at),
                    "gl_loss_vs_dense_pt": [None if r["dense"] is None else
                                            100 * (r["dense"] - r["gl"]) for r in at],
                    "tp_loss_vs_dense_pt": [None if r["dense"] is None else
                                            100 * (r["dense"] - r["tp"]) for r in at]})
    return out


def plot(summary: list[dict[str, Any]], path: Path, title: str) -> None:
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for i, s in enumerate(summary):
        ax.scatter([i] * s["n"], s["delta_pt"], color="tab:blue", alpha=0.6, s=18)
        ax.errorbar(i + 0.15, s["mean_delta_pt"], yerr=2 * s["se_pt"], fmt="o",
                    color="black", capsize=4)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(summary)), [s["level"] for s in summary], fontsize=7)
    ax.set_ylabel("prunekit − incumbent (pt)")
    ax.set_title(f"{title}: seeds (dots), mean ± 2 SE", fontsize=9)
    plots.save(fig, path, dpi=120)


def sources(files: list[Path]) -> tuple[list[dict], list[dict]]:
    """The pairs of every file, and which command and commit wrote each file."""
    rows, src = [], []
    for f in files:
        doc = record.load(f)
        state = record.status(doc)
        if state != "ok":
            raise SystemExit(f"{f}: {state} — only complete, valid harness-written runs "
                             "are paired")
        rows += pairs(doc)
        src.append({"file": str(f), "command": doc["provenance"]["command"],
                    "commit": doc["provenance"]["git"]["commit"],
                    "dirty": doc["provenance"]["git"].get("dirty"),
                    "comparisons": [_terms(c) for c in doc.get("comparisons", [])]})
    seeds = [s["command"] for s in src]
    if len(set(seeds)) != len(seeds):
        raise SystemExit("the same run was given twice")
    kinds = {_kind(record.load(f)) for f in files}
    if len(kinds) != 1:
        raise SystemExit(f"files of different kinds cannot be paired: {sorted(kinds)}")
    return rows, src


def _terms(cmp: dict[str, Any]) -> dict[str, Any]:
    """What a source's comparison gave each method: budget and grid (the fairness terms)."""
    return {"name": cmp["name"], "budget_kind": cmp["budget_kind"], "budget": cmp["budget"],
            "methods": {m["name"]: {"grid": m["grid"], "grid_size": m["grid_size"],
                                    "incumbent": m["incumbent"]} for m in cmp["methods"]}}


def _kind(doc: dict[str, Any]) -> str:
    """``training_methods_<part>`` or ``training_vgg``: names the summary file."""
    script = Path(doc["provenance"]["script"]).stem
    part = doc["provenance"]["config"].get("part")
    return f"{script}_{part}" if part else script


COLUMNS = ["level", "prunekit method", "seeds", "prunekit acc. (mean)", "incumbent acc. (mean)",
           "mean Δ ± SE (pt)", "verdict", "ahead in"]
PLOTS = {"training_methods_structured": ("training_structured_seeds.png",
                                         "LeNet-5, Fashion-MNIST"),
         "training_vgg": ("training_vgg_seeds.png", "VGG-style CNN, Fashion-MNIST"),
         "training_methods_unstructured": ("methods_unstructured_seeds.png",
                                           "LeNet-300-100, Fashion-MNIST"),
         "training_methods_lottery": ("methods_lottery_seeds.png",
                                      "Lottery ticket vs re-init, LeNet-300-100")}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = harness.parser("structured_seeds", __doc__, seed=None, threads=None)
    p.add_argument("files", nargs="+", type=Path)
    args = p.parse(argv)
    with harness.session(args) as rec:
        rows, src = sources(args.files)
        if not rows:
            raise SystemExit("no (prox GL, Torch-Pruning) pairs in the given files")
        summary = summarize(rows)
        table = [[s["level"], s["method"], s["n"], f"{100 * s['gl_mean_acc']:.2f} %",
                  f"{100 * s['incumbent_mean_acc']:.2f} %",
                  tables.mean_se_text(s["mean_delta_pt"], s["se_pt"]), s["verdict"],
                  f"{s['gl_wins']} of {s['n']}"] for s in summary]
        result = {"sources": src, "pairs": rows, "levels": summary,
                  "table": {"columns": COLUMNS, "rows": table}}
        kind = _kind(record.load(args.files[0]))
        result["kind"] = kind
        out = rec.write(harness.out_path(args, f"{kind}_seeds"), result)
        if args.img_dir is not None:
            png, title = PLOTS.get(kind, (f"{kind}_seeds.png", kind))
            plot(summary, args.img_dir / png, title)
    tables.show("prunekit − incumbent, paired per seed", COLUMNS, table)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
