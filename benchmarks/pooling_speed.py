"""Index-free max pooling (``prunekit.hardware.replace_max_pool``) against ``nn.MaxPool2d``.

Two parts, one run, CPU:

1. **Pooling alone**: ``nn.MaxPool2d`` vs :class:`prunekit.hardware.StridedMaxPool2d` (what
   ``replace_max_pool`` swaps in where it measures it faster) on the
   shapes LeNet-5, a VGG-style CNN and a ResNet stem pool (fastest of ``--repeats`` runs).
2. **LeNet-5 realized efficiency**: the structured rows of ``training_methods_structured.json``
   (prox GL and Torch-Pruning at 4×, 8×, 16× fewer MACs) rebuilt from their widths and timed
   against the dense model in alternating rounds (batch 256), once as is and once with both
   pools swapped for the strided form in *both* models; ``ρ = speedup / MAC reduction`` for each.

Writes ``benchmarks/results/pooling_speed.json`` (with machine info) and a PNG beside it.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pooling_speed.py --threads 1
    .venv/bin/python benchmarks/pooling_speed.py --smoke     # seconds
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "benchmarks") not in sys.path:  # appended: never shadows an installed package
    sys.path.append(str(ROOT / "benchmarks"))
import training_methods as tm  # noqa: E402

from prunekit.hardware import StridedMaxPool2d  # noqa: E402
from prunekit.hardware.timing import paired_latency  # noqa: E402
from prunekit.measure import count_macs, latency  # noqa: E402
from prunekit.measure.machine import machine_info  # noqa: E402

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


def pool_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for shape, k, s, p, where in SHAPES[:2] if args.smoke else SHAPES:
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        ms = [latency(m, x, threads=args.threads, warmup=2, repeats=args.repeats).min_ms
              for m in (nn.MaxPool2d(k, s, p), StridedMaxPool2d(k, s, p))]
        rows.append({"shape": list(shape), "kernel": k, "stride": s, "padding": p,
                     "where": where, "max_pool2d_ms": ms[0], "strided_ms": ms[1],
                     "speedup": ms[0] / ms[1]})
        print(f"{where:45s} {str(shape):20s} {ms[0]:8.2f} ms -> {ms[1]:7.2f} ms "
              f"({ms[0] / ms[1]:.2f}x)")
    return rows


def lenet_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every structured row's widths, timed against dense as is and with fast pooling."""
    src = json.loads(args.structured.read_text())["structured"]
    x = torch.rand(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    def fn(model: nn.Module) -> float:
        return latency(model, x, threads=args.threads, warmup=2, repeats=args.repeats).min_ms

    def fast(model: nn.Module) -> nn.Module:  # both pools swapped, whatever they measure
        for i, m in enumerate(model):
            if isinstance(m, nn.MaxPool2d):
                model[i] = StridedMaxPool2d(m.kernel_size, m.stride, m.padding)
        return model

    dense_macs = count_macs(tm.lenet5_at([20, 50, 500, 10]), x[:1])
    rows = []
    seen = set()
    for r in src[:3] if args.smoke else src:
        widths = r.get("widths") or [20, 50, 500, 10]
        if tuple(widths) in seen or widths == [20, 50, 500, 10]:
            continue
        seen.add(tuple(widths))
        row = {"level": r.get("level"), "method": r["method"], "widths": widths,
               "mac_reduction": dense_macs / count_macs(tm.lenet5_at(widths), x[:1])}
        for mode, prep in (("eager", lambda m: m), ("fast_pool", fast)):
            dense_ms, ms = paired_latency(prep(tm.lenet5_at([20, 50, 500, 10]).eval()),
                                          prep(tm.lenet5_at(widths).eval()), fn, args.rounds)
            s = dense_ms / ms
            row[mode] = {"dense_ms": dense_ms, "ms": ms, "speedup": s,
                         "rho": s / row["mac_reduction"]}
        rows.append(row)
        print(f"{str(r.get('level')):10s} {r['method'][:44]:44s} {str(widths):18s} "
              f"MAC {row['mac_reduction']:5.2f}x  eager {row['eager']['speedup']:.2f}x "
              f"(ρ {row['eager']['rho']:.2f}, dense {row['eager']['dense_ms']:.1f} ms)  "
              f"fast pool {row['fast_pool']['speedup']:.2f}x (ρ {row['fast_pool']['rho']:.2f}, "
              f"dense {row['fast_pool']['dense_ms']:.1f} ms)")
    return rows


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["lenet5"]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for mode, color in (("eager", "tab:grey"), ("fast_pool", "tab:blue")):
        ax.scatter([r["mac_reduction"] for r in rows], [r[mode]["speedup"] for r in rows],
                   color=color, label="nn.MaxPool2d" if mode == "eager" else
                   "replace_max_pool (both models)")
    top = max(r["mac_reduction"] for r in rows) * 1.05
    ax.plot([1, top], [1, top], "k--", lw=0.8, label="ρ = 1")
    ax.plot([1, top], [0.9, 0.9 * top], "k:", lw=0.8, label="ρ = 0.9")
    ax.set_xlabel("MAC reduction")
    ax.set_ylabel("measured speedup")
    ax.set_title(f"LeNet-5, batch {result['config']['batch']}, "
                 f"{result['config']['threads']} thread(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--rounds", type=int, default=4, help="alternating dense/pruned rounds")
    p.add_argument("--structured", type=Path,
                   default=ROOT / "benchmarks/results/training_methods_structured.json")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pooling_speed.json")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args(argv)
    if args.smoke:
        args.batch, args.repeats, args.rounds = 8, 2, 1
    torch.manual_seed(0)
    result = {"benchmark": "pooling_speed", "machine": machine_info(),
              "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "pooling": pool_rows(args), "lenet5": lenet_rows(args)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    plot(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
