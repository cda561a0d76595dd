"""Index-free max pooling (``prunekit.hardware.replace_max_pool``) against ``nn.MaxPool2d``.

Two parts, one run, CPU:

1. **Pooling alone**: ``nn.MaxPool2d`` vs :class:`prunekit.hardware.StridedMaxPool2d` (what
   ``replace_max_pool`` swaps in where it measures it faster) on the shapes of LeNet-5, a
   VGG-style CNN and a ResNet stem pool: both timed in paired ABBA rounds, medians.
2. **LeNet-5 realized efficiency**: pruned LeNet-5 widths — the rows of a structured result
   (``--structured FILE``, written by ``training_methods.py --part structured``) or, by
   default, uniform widths at 4×, 8× and 16× fewer MACs — rebuilt and timed against the
   dense model in paired rounds (batch 256), once as is and once with both pools swapped
   for the strided form in *both* models; ``ρ = speedup / MAC reduction`` for each.

Every reading is kept in the JSON; tables show medians and the range of per-round ratios.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/pooling_speed.py --threads 1
    python benchmarks/pooling_speed.py --smoke     # seconds
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks import training_methods as tm  # noqa: E402
from benchmarks.harness import plots, record, tables, timing  # noqa: E402
from prunekit.hardware import StridedMaxPool2d  # noqa: E402
from prunekit.measure import count_macs  # noqa: E402

DENSE = [20, 50, 500, 10]
SHAPES = [  # (input shape, kernel, stride, padding, where it occurs)
    ((256, 20, 24, 24), 2, 2, 0, "LeNet-5 pool 1, dense"),
    ((256, 6, 24, 24), 2, 2, 0, "LeNet-5 pool 1, 8x GL"),
    ((256, 50, 8, 8), 2, 2, 0, "LeNet-5 pool 2, dense"),
    ((256, 14, 8, 8), 2, 2, 0, "LeNet-5 pool 2, 8x GL"),
    ((256, 32, 28, 28), 2, 2, 0, "VGG-style CNN block 1"),
    ((1, 64, 112, 112), 3, 2, 1, "ResNet stem, batch 1"),
    ((32, 64, 112, 112), 3, 2, 1, "ResNet stem, batch 32"),
    ((256, 20, 24, 24), 3, 3, 0, "3x3 / 3, no overlap"),
]


def _timed(models: dict[str, nn.Module], x: torch.Tensor, args) -> timing.PairedTiming:
    return timing.paired(models, x, rounds=args.rounds, repeats=args.repeats, warmup=2,
                         threads=args.threads)


def pool_rows(args) -> list[dict[str, Any]]:
    rows = []
    for shape, k, s, p, where in SHAPES[:2] if args.smoke else SHAPES:
        x = torch.randn(shape, generator=harness.generator(0))
        t = _timed({"max_pool2d": nn.MaxPool2d(k, s, p), "strided": StridedMaxPool2d(k, s, p)},
                   x, args)
        sp = t.speedup("max_pool2d", "strided")
        rows.append({"shape": list(shape), "kernel": k, "stride": s, "padding": p,
                     "where": where, "max_pool2d_ms": t.median_ms("max_pool2d"),
                     "strided_ms": t.median_ms("strided"), "speedup": sp["speedup"],
                     "speedup_range": [sp["min"], sp["max"]], "timing": t.to_dict()})
    return rows


def uniform_widths(factor: float, x: torch.Tensor) -> list[int]:
    """LeNet-5 widths scaled by one factor (output kept) with at most 1/``factor`` of the
    dense MACs, by bisection."""
    dense = count_macs(tm.lenet5_at(DENSE), x)
    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        w = [max(1, round(c * mid)) for c in DENSE[:3]] + [DENSE[3]]
        lo, hi = (mid, hi) if count_macs(tm.lenet5_at(w), x) * factor <= dense else (lo, mid)
    return [max(1, round(c * lo)) for c in DENSE[:3]] + [DENSE[3]]


def width_sets(args, x: torch.Tensor) -> list[dict[str, Any]]:
    if args.structured is None:
        factors = (4.0, 8.0) if args.smoke else (4.0, 8.0, 16.0)
        return [{"level": f"{f:g}x MACs", "method": "uniform widths",
                 "widths": uniform_widths(f, x)} for f in factors]
    doc = record.load(args.structured)
    if record.status(doc) != "ok":
        raise SystemExit(f"{args.structured}: {record.status(doc)}; give a complete result "
                         "written by training_methods.py --part structured")
    return [{"level": r.get("level"), "method": r["method"], "widths": r["widths"]}
            for r in doc["structured"] if r.get("widths") and r["widths"] != DENSE]


def fast(model: nn.Module) -> nn.Module:
    """Both pools swapped for the strided form, whatever they measure."""
    for i, m in enumerate(model):
        if isinstance(m, nn.MaxPool2d):
            model[i] = StridedMaxPool2d(m.kernel_size, m.stride, m.padding)
    return model


def lenet_rows(args) -> list[dict[str, Any]]:
    x = torch.rand(args.batch, 1, 28, 28, generator=harness.generator(0))
    dense_macs = count_macs(tm.lenet5_at(DENSE), x[:1])
    rows, seen = [], set()
    for src in width_sets(args, x[:1]):
        if tuple(src["widths"]) in seen:
            continue
        seen.add(tuple(src["widths"]))
        row = {**src, "mac_reduction": dense_macs / count_macs(tm.lenet5_at(src["widths"]),
                                                                x[:1])}
        for mode, prep in (("eager", lambda m: m), ("fast_pool", fast)):
            t = _timed({"dense": prep(tm.lenet5_at(DENSE)),
                        "pruned": prep(tm.lenet5_at(src["widths"]))}, x, args)
            sp = t.speedup("dense", "pruned")
            row[mode] = {"dense_ms": t.median_ms("dense"), "ms": t.median_ms("pruned"),
                         "speedup": sp["speedup"], "speedup_range": [sp["min"], sp["max"]],
                         "rho": sp["speedup"] / row["mac_reduction"], "timing": t.to_dict()}
        rows.append(row)
    return rows


def plot(result: dict[str, Any], args, path: Path) -> None:
    plt = plots.pyplot()
    rows = result["lenet5"]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for mode, color in (("eager", "tab:grey"), ("fast_pool", "tab:blue")):
        ax.scatter([r["mac_reduction"] for r in rows], [r[mode]["speedup"] for r in rows],
                   color=color, label="nn.MaxPool2d" if mode == "eager" else
                   "replace_max_pool (both models)")
    top = max(r["mac_reduction"] for r in rows) * 1.05
    ax.plot([1, top], [1, top], "k--", lw=0.8, label="ρ = 1")
    ax.plot([1, top], [0.9, 0.9 * top], "k:", lw=0.8, label="ρ = 0.9")
    ax.set(xlabel="MAC reduction", ylabel="measured speedup (median)",
           title=f"LeNet-5, batch {args.batch}, {args.threads} thread(s)")
    ax.legend(fontsize=8)
    plots.save(fig, path, dpi=120)


COLUMNS = ["level", "method", "widths", "MAC red.", "eager speedup (ρ)", "fast-pool speedup (ρ)"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = harness.parser("pooling_speed", __doc__)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=10, help="timed passes per round")
    p.add_argument("--rounds", type=int, default=6, help="alternating ABBA rounds")
    p.add_argument("--structured", type=Path, default=None,
                   help="widths from this training_methods.py --part structured result")
    args = p.parse(argv)
    if args.smoke:
        args.batch, args.repeats, args.rounds = 8, 2, 2
    with harness.session(args) as rec:
        result = {"pooling": pool_rows(args), "lenet5": lenet_rows(args)}
        table = [[r["level"], r["method"], str(r["widths"]), f"{r['mac_reduction']:.2f}",
                  *[f"{r[m]['speedup']:.2f} ({r[m]['rho']:.2f})" for m in ("eager",
                                                                          "fast_pool")]]
                 for r in result["lenet5"]]
        result["table"] = {"columns": COLUMNS, "rows": table}
        out = rec.write(harness.out_path(args), result)
        if args.img_dir is not None:
            plot(result, args, args.img_dir / "pooling_speed.png")
    tables.show("LeNet-5 measured speedup (median of paired rounds)", COLUMNS, table)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
