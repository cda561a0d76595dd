"""Re-time the pruned shapes recorded by ``training_methods.py`` on a quiet machine.

Latency depends on a model's shapes, not on its weight values, so a structured row's
``widths`` (out features of each Conv/Linear, in order) define what to time. This rebuilds
LeNet-5 at each recorded width set and times it against the dense LeNet-5 in alternating
(ABBA) rounds — the benchmark's own latencies were taken on a box shared with training jobs
(dense 72–986 ms across runs for the same model). Output: speedup, MAC reduction and
ρ = speedup / MAC reduction per row, as JSON under ``benchmarks/results/``.

    python benchmarks/retime_widths.py benchmarks/results/training_methods_structured*.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def lenet5(widths: list[int]) -> nn.Module:
    """LeNet-5 (20-50-500-10 when dense) with the given conv/linear output widths."""
    c1, c2, f1, out = widths
    return nn.Sequential(nn.Conv2d(1, c1, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 16, f1),
                         nn.ReLU(), nn.Linear(f1, out)).eval()


def rows_of(paths: list[Path]) -> list[dict[str, Any]]:
    """Distinct (method, widths) structured rows of the given result files."""
    seen, out = set(), []
    for path in paths:
        for r in json.loads(path.read_text()).get("structured", []):
            key = (r.get("method"), tuple(r.get("widths") or ()))
            if r.get("widths") and len(r["widths"]) == 4 and key not in seen:
                seen.add(key)
                out.append({"source": path.name, "method": r["method"], "widths": r["widths"],
                            "accuracy": r.get("accuracy"),
                            "recorded_rho": r.get("rho")})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from prunekit.hardware.signature import DeviceSpec
    from prunekit.hardware.timing import model_latency_fn, paired_latency
    from prunekit.measure import count_macs
    from prunekit.measure.machine import machine_info

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+", type=Path)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--out", type=Path,
                   default=ROOT / "benchmarks" / "results" / "retime_widths_lenet5.json")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, 1, 28, 28)
    fn = model_latency_fn(x, DeviceSpec("cpu", args.threads), warmup=3, repeats=10,
                          min_total_ms=300.0)
    dense = lenet5([20, 50, 500, 10])
    macs0 = count_macs(dense, x[:1])
    doc: dict[str, Any] = {"machine": machine_info(), "load_avg_start": os.getloadavg(),
                           "config": {"batch": args.batch, "threads": args.threads,
                                      "rounds": args.rounds}, "rows": []}
    for row in rows_of(args.results):
        pruned = lenet5(row["widths"])
        dense_ms, ms = paired_latency(dense, pruned, fn, args.rounds)
        mac_red = macs0 / count_macs(pruned, x[:1])
        row.update(dense_ms=dense_ms, pruned_ms=ms, speedup=dense_ms / ms,
                   mac_reduction=mac_red, rho=dense_ms / ms / mac_red)
        doc["rows"].append(row)
        print(f"{row['widths']!s:22} {mac_red:6.2f}x MACs  {dense_ms:7.2f} -> {ms:6.2f} ms  "
              f"{dense_ms / ms:5.2f}x  rho {row['rho']:.2f}  ({row['method'][:50]})")
    doc["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"wrote {args.out}")
    return doc


if __name__ == "__main__":
    main()
