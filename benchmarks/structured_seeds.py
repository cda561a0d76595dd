"""Proximal group lasso against Torch-Pruning at matched MACs, over several seeds.

``training_methods.py --structured-only`` runs, per seed and MAC level, prunekit's proximal
GL in budget mode and Torch-Pruning's magnitude pruner at the MACs it reached, with the
same fine-tuning. One seed cannot tell a few tenths of a point from fine-tuning noise, so
this script pairs the two in every given JSON and reports, per level, the difference
``Δ = acc(prox GL) − acc(Torch-Pruning)`` for each seed, its mean, the standard error
``SE = sd(Δ) / √n`` and how many seeds GL wins; JSON under ``benchmarks/results/`` and a
PNG (each seed a dot, the mean ± 2 SE a bar).

Usage::

    R=benchmarks/results
    .venv/bin/python benchmarks/structured_seeds.py $R/training_methods_structured.json \\
        $R/training_methods_structured_seed1.json \\
        $R/training_methods_structured_{4x,8x,16x}_seed{2,3,4,5}.json
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GL = "prunekit proximal GL, MAC budget"
TP = "Torch-Pruning magnitude"


def pairs(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every (prox GL in budget mode, Torch-Pruning right after it) pair of one run; the
    recipe's minimum width is a fraction of each group, so a row with an absolute one
    (``min_keep`` ≥ 1: the ``--min-keep 2`` ablation) is left out."""
    rows = result["structured"]
    seed = result["config"]["seed"] if isinstance(result["config"], dict) else \
        result["config"][0]["seed"]
    dense = next(r["accuracy"] for r in rows if r["method"] == "dense")
    out = []
    for gl, tp in zip(rows, rows[1:]):
        if gl["method"].startswith(GL) and tp["method"].startswith(TP) \
                and gl["level"] == tp["level"] and (gl.get("min_keep") or 0) < 1:
            out.append({"seed": seed, "level": gl["level"], "dense": dense,
                        "gl": gl["accuracy"], "tp": tp["accuracy"],
                        "gl_macs_reduction": gl["mac_reduction"],
                        "tp_macs_reduction": tp["mac_reduction"],
                        "gl_widths": gl["widths"], "tp_widths": tp["widths"],
                        "delta_pt": 100 * (gl["accuracy"] - tp["accuracy"])})
    return out


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level: the seeds' Δ (points), mean, SE, wins, and GL's loss against dense."""
    levels = sorted({r["level"] for r in rows}, key=lambda s: float(s.split("x")[0]))
    out = []
    for level in levels:
        at = sorted((r for r in rows if r["level"] == level), key=lambda r: r["seed"])
        d = [r["delta_pt"] for r in at]
        se = statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
        out.append({"level": level, "seeds": [r["seed"] for r in at], "delta_pt": d,
                    "mean_delta_pt": statistics.fmean(d), "se_pt": se,
                    "gl_wins": sum(x > 0 for x in d), "n": len(d),
                    "gl_loss_vs_dense_pt": [100 * (r["dense"] - r["gl"]) for r in at],
                    "tp_loss_vs_dense_pt": [100 * (r["dense"] - r["tp"]) for r in at]})
    return out


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for i, s in enumerate(summary):
        ax.scatter([i] * s["n"], s["delta_pt"], color="tab:blue", alpha=0.6, s=18)
        ax.errorbar(i + 0.15, s["mean_delta_pt"], yerr=2 * s["se_pt"], fmt="o",
                    color="black", capsize=4)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(range(len(summary)), [s["level"] for s in summary])
    ax.set_ylabel("prox GL − Torch-Pruning (pt)")
    ax.set_title("LeNet-5, Fashion-MNIST: seeds (dots), mean ± 2 SE")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--out", type=Path,
                   default=ROOT / "benchmarks/results/training_methods_structured_seeds.json")
    p.add_argument("--plot", type=Path, default=ROOT / "docs/img/training_structured_seeds.png")
    args = p.parse_args(argv)
    rows = [r for f in args.files for r in pairs(json.loads(f.read_text()))]
    if not rows:
        raise SystemExit("no (prox GL budget, Torch-Pruning) pairs in the given files")
    summary = summarize(rows)
    result = {"benchmark": "structured_seeds", "files": [str(f) for f in args.files],
              "pairs": rows, "levels": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    plot(summary, args.plot)
    for s in summary:
        print(f"{s['level']}: Δ = {s['mean_delta_pt']:+.2f} ± {s['se_pt']:.2f} pt (SE) over "
              f"{s['n']} seeds, GL ahead in {s['gl_wins']}; per seed "
              + ", ".join(f"{x:+.2f}" for x in s["delta_pt"]))
    print(f"wrote {args.out} and {args.plot}")
    return result


if __name__ == "__main__":
    main()
