"""How long one ``prune`` call takes: prunekit (value check included) vs Torch-Pruning.

Each model is built once (random weights, 224×224 inputs, batch 1), then pruned at the
same channel ratio by both tools on fresh deep copies, in ABBA order over ``--repeats``
rounds (prunekit, Torch-Pruning, Torch-Pruning, prunekit, ...), so that load drifting on a
shared machine slows both alike. Every reading is kept (wall and process CPU seconds of
the prune call alone: trace, score, cut and every check the tool does); the table shows
the median and the range. Torch-Pruning runs as its documentation says: ``MetaPruner``
with group magnitude (L2) importance, the final layer ignored, ``num_heads`` for
attention (see ``benchmarks/harness/incumbents.py``). prunekit runs ``prunekit.prune(model,
x, ratio=r)``: trace, score, cut, forward check and value check.

Usage::

    nice -n 10 python benchmarks/prune_time.py --threads 2     # ~5 CPU-minutes
    python benchmarks/prune_time.py --smoke                      # seconds
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import tables  # noqa: E402

MODELS = ("resnet50", "densenet121", "vit_b_16", "mobilenet_v2")
TOOLS = ("prunekit", "torch_pruning")


def _build(name: str, smoke: bool) -> tuple[torch.nn.Module, torch.Tensor]:
    import torchvision

    if smoke:  # a small model of the same families, seconds
        model = torchvision.models.resnet18(num_classes=10)
        return model.eval(), torch.randn(1, 3, 32, 32)
    torch.manual_seed(0)
    return torchvision.models.get_model(name, num_classes=1000).eval(), \
        torch.randn(1, 3, 224, 224)


def _prunekit(model: torch.nn.Module, x: torch.Tensor, ratio: float) -> dict[str, Any]:
    import prunekit

    res = prunekit.prune(model, x, ratio=ratio, progress=False)
    return {"macs_after": res.macs_after, "left_whole": len(res.skipped)}


def _torch_pruning(model: torch.nn.Module, x: torch.Tensor, ratio: float) -> dict[str, Any]:
    from benchmarks.harness.incumbents import torch_pruning
    from prunekit.measure import count_macs

    config = torch_pruning(model, x, ratio)  # MetaPruner, L2, final layer ignored, num_heads
    return {"macs_after": count_macs(model, x), "config": config}


RUN: dict[str, Callable[[torch.nn.Module, torch.Tensor, float], dict[str, Any]]] = {
    "prunekit": _prunekit, "torch_pruning": _torch_pruning}


def time_one(tool: str, model: torch.nn.Module, x: torch.Tensor, ratio: float
             ) -> dict[str, Any]:
    """Prune a deep copy of ``model`` with ``tool``; wall and CPU seconds of the call."""
    twin = copy.deepcopy(model)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    extra = RUN[tool](twin, x, ratio)
    return {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
            **extra}


def measure(name: str, ratio: float, repeats: int, smoke: bool) -> dict[str, Any]:
    """Every reading of both tools on one model, in ABBA order."""
    model, x = _build(name, smoke)
    readings: dict[str, list[dict[str, Any]]] = {t: [] for t in TOOLS}
    for r in range(repeats):
        for tool in TOOLS if r % 2 == 0 else reversed(TOOLS):
            readings[tool].append(time_one(tool, model, x, ratio))
    row: dict[str, Any] = {"model": name, "ratio": ratio, "readings": readings}
    for tool in TOOLS:
        walls = [v["wall_s"] for v in readings[tool]]
        row[tool] = {"median_wall_s": statistics.median(walls), "wall_range_s":
                     [min(walls), max(walls)], "median_cpu_s": statistics.median(
                         [v["cpu_s"] for v in readings[tool]])}
    return row


def main(argv: list[str] | None = None) -> None:
    p = harness.parser("prune_time", __doc__, threads=2)
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--ratio", type=float, default=0.3)
    p.add_argument("--repeats", type=int, default=4, help="rounds (ABBA over the tools)")
    args = p.parse(argv)
    models = ["resnet18"] if args.smoke else args.models
    with harness.session(args) as run:
        rows = []
        for name in models:
            rows.append(measure(name, args.ratio, 2 if args.smoke else args.repeats,
                                args.smoke))
            print(f"{name}: prunekit {rows[-1]['prunekit']['median_wall_s']:.2f} s, "
                  f"Torch-Pruning {rows[-1]['torch_pruning']['median_wall_s']:.2f} s",
                  flush=True)
        table = tables.markdown(
            ["model", "prunekit s (median, range)", "Torch-Pruning s (median, range)"],
            [[r["model"], *(f"{r[t]['median_wall_s']:.2f} ({r[t]['wall_range_s'][0]:.2f}–"
                            f"{r[t]['wall_range_s'][1]:.2f})" for t in TOOLS)]
             for r in rows])
        print(table)
        run.write(harness.out_path(args), {"rows": rows, "table": table})


if __name__ == "__main__":
    main()
