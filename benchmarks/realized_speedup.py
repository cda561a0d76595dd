"""Realized speedup: dense vs prunekit (``target_speedup``) vs Torch-Pruning, measured.

For every (model, batch size, target) the script

* prunes a copy with :func:`prunekit.hardware.prune_to_speedup` (hardware widths from the
  cached probe, measured latency model, measured search; prune time includes all of it),
  then prunes once more with the cache now warm (``prune_s`` cold vs ``prune_warm_s``;
  ``layer_timings`` counts the layer timings that missed the cache; the cache,
  ``$PRUNEKIT_CACHE``, is shared by every row of a run, so later rows reuse layer shapes);
* prunes copies with Torch-Pruning as its docs say (``benchmarks.harness.incumbents``:
  group L2 magnitude, ``round_to`` = our channel multiple, every output layer ignored,
  ``num_heads`` for attention), its channel ratio bisected so that its MACs are within 1 %
  of ours — or, when no ratio lands that close, the two runs bracketing ours, both timed,
  their speedup interpolated in log-MACs (``tp_prune_s``: one pruning run, ``tp_match_s``:
  the whole search);
* times dense, prunekit and Torch-Pruning in paired ABBA rounds on the same inputs, on the
  same device (``benchmarks.harness.timing``: every reading kept, medians and the range of
  the per-round ratios), and reports MAC reduction (theory), measured speedup and
  ``ρ = measured speedup / MAC reduction``, plus our latency model's prediction error.

One command, one file: ``benchmarks/results/realized_speedup_<device>_<threads>thread.json``
(smoke: ``realized_speedup_smoke.json``; other grids: ``--out``), rewritten after every row
(``complete`` once the grid is done); a plot beside it unless ``--img-dir`` is given.

Usage::

    python benchmarks/realized_speedup.py --threads 2 --width-or-depth     # full CPU grid
    python benchmarks/realized_speedup.py --configs resnet50:32:2 mobilenet_v2:32:2 --out F
    python benchmarks/realized_speedup.py --smoke                          # seconds
    python benchmarks/realized_speedup.py --device cuda          # fp16 channels_last, b 256, 1
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import incumbents, plots, tables, timing  # noqa: E402
from prunekit.hardware import DeviceSpec, cache_dir, prune_to_speedup  # noqa: E402
from prunekit.hardware.timing import with_batch  # noqa: E402
from prunekit.measure import count_macs  # noqa: E402

MODELS = ("resnet50", "mobilenet_v2", "efficientnet_b0", "densenet121", "vit_b_16")
CPU_BATCHES, CUDA_BATCHES = (1, 32), (256, 1)
TARGETS = (2.0, 3.0)


class Tiny(nn.Module):
    """Smoke-mode model: two conv blocks and a classifier (seconds to prune)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    """Model with random weights (no downloads) and one example image."""
    harness.seed_all(0)
    if name == "tiny":
        return Tiny().eval(), torch.randn(1, 3, 32, 32)
    import torchvision

    return torchvision.models.get_model(name, weights=None).eval(), torch.randn(1, 3, 224, 224)


def _classifier(model: nn.Module) -> nn.Module:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def tp_matched(model: nn.Module, x: torch.Tensor, macs_goal: int, steps: int,
               round_to: int | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Torch-Pruning run(s) at ``macs_goal`` (within 1 %, else the bracketing pair)."""
    start = time.perf_counter()
    runs = incumbents.matched(model, x, macs_goal, steps=steps, round_to=round_to)
    t0 = time.perf_counter()
    incumbents.pruned_copy(model, x, runs[0]["ratio"], round_to=round_to)
    return runs, {"tp_ratio": [r["ratio"] for r in runs], "tp_prune_s": time.perf_counter() - t0,
                  "tp_match_s": t0 - start, "tp_match": "within 1 %" if len(runs) == 1
                  else "bracket (speedup interpolated in log-MACs)",
                  "tp_config": runs[0]["config"]}


def width_floor(dense: nn.Module, x: torch.Tensor, ratio: float = 0.9) -> nn.Module:
    """The dense model with every prunable group cut by ``ratio`` (the search's own
    ``max_ratio`` bound), classifier kept: the fastest any width-only plan within that bound
    can be. Its measured speedup is the ceiling of channel pruning on the device; at batch
    1 on CPU it sits far below its MAC ratio (per-operator overhead does not shrink), which
    bounds ρ for every width method."""
    import prunekit

    floor = copy.deepcopy(dense)
    prunekit.prune(floor, x, ratio=ratio, ignore=[_classifier(floor)])
    return floor


def width_or_depth(dense: nn.Module, x: torch.Tensor, batch: int, target: float,
                   spec: DeviceSpec, args: Any) -> tuple[nn.Module, dict[str, Any]]:
    """``prunekit.prune(target_speedup=T, structures=["depth", "channels"])`` on a copy: a
    width plan and a depth plan (residual blocks or DenseNet layers removed) both measured,
    and among those meeting T the one ``--prefer`` names applied (default ``macs``: the
    most MACs kept — with random weights the outputs' fidelity says nothing about quality)."""
    from prunekit.hardware.choose import prune_width_or_depth  # what prune() calls then

    model = copy.deepcopy(dense)
    t0 = time.perf_counter()
    res = prune_width_or_depth(model, x, target, device=spec.device, threads=spec.threads,
                               batch_size=batch, rounds=args.rounds,
                               repeats=args.search_repeats, levels=args.levels,
                               round_to=args.round_to, prefer=args.prefer)
    return model, {"wd_kind": res.speedup.kind,  # width | depth | depth+width
                   "wd_prune_s": time.perf_counter() - t0,
                   "wd_met": res.speedup.met, "wd_notes": res.notes,
                   "wd_candidates": [{k: v for k, v in c.items() if k in (
                       "kind", "measured_speedup", "met", "macs", "fidelity", "seconds",
                       "blocks_removed", "measured", "tries", "readings")}
                      for c in res.speedup.search if "kind" in c]}


def _prune(dense: nn.Module, x: torch.Tensor, batch: int, target: float, spec: DeviceSpec,
           args: Any, log: Any) -> tuple[nn.Module, Any, float]:
    """prunekit on a copy of ``dense`` with its default (fast) search timing; wall seconds."""
    model = copy.deepcopy(dense)
    t0 = time.perf_counter()
    res = prune_to_speedup(model, x, target, device=spec.device, threads=spec.threads,
                           batch_size=batch, dtype=spec.dtype, channels_last=spec.channels_last,
                           levels=args.levels, rounds=args.rounds, repeats=args.search_repeats,
                           round_to=args.round_to, progress=log)
    return model, res, time.perf_counter() - t0


def run_one(name: str, batch: int, target: float, spec: DeviceSpec, args: Any,
            console: Console) -> dict[str, Any]:
    dense, x = build(name)
    row: dict[str, Any] = {"model": name, "batch": batch, "target": target,
                           "load_avg_before": os.getloadavg()}
    log = lambda m: console.log(f"{name} b{batch} {target:g}x: {m}")  # noqa: E731
    ours, res, prune_s = _prune(dense, x, batch, target, spec, args, log)
    sp = res.speedup  # what prune_to_speedup measured
    row.update(prune_s=prune_s, prune_stages=sp.stages, layer_timings=sp.layer_timings,
               measured_candidates=len(sp.search), met=sp.met, notes=res.notes,
               multiple=sp.multiple, predicted_ms=sp.predicted_ms,
               own_measured_speedup=sp.measured_speedup, search=sp.search)
    if args.warm_rerun:  # same prune again: every layer timing now comes from the cache
        _, warm, warm_s = _prune(dense, x, batch, target, spec, args, log)
        row.update(prune_warm_s=warm_s, prune_warm_stages=warm.speedup.stages,
                   warm_layer_timings=warm.speedup.layer_timings,
                   warm_measured_candidates=len(warm.speedup.search),
                   warm_own_measured_speedup=warm.speedup.measured_speedup)
    macs0, macs_ours = count_macs(dense, x), count_macs(ours, x)
    models = {"dense": dense, "prunekit": ours}
    tp_runs = _torch_pruning(dense, x, macs_ours, args, res.multiple, row)
    for i, r in enumerate(tp_runs):
        models[f"torch_pruning_{i}"] = r["model"]
    if args.floor:
        models["width_floor"] = width_floor(dense, x)
        row["floor_macs_ratio"] = macs0 / count_macs(models["width_floor"], x)
    if args.width_or_depth:
        log("width or depth (prunekit.prune(..., structures=['depth', 'channels']))")
        models["prunekit_wd"], info = width_or_depth(dense, x, batch, target, spec, args)
        row.update(info, wd_macs_ratio=macs0 / count_macs(models["prunekit_wd"], x))
    log("final paired timing")
    timed = timing.paired(models, with_batch(x, batch), rounds=args.final_rounds,
                          repeats=args.repeats, warmup=args.warmup, spec=spec,
                          min_total_ms=args.min_timing_ms)
    row.update(ms={k: timed.median_ms(k) for k in models}, timing=timed.to_dict(),
               macs_ratio=macs0 / macs_ours)
    _speedups(row, timed, tp_runs, macs0, macs_ours)
    rescaled = row["ms"]["prunekit"] * sp.model_dense_ms / row["ms"]["dense"]
    row["prediction_error"] = sp.predicted_ms / rescaled - 1
    first = next((r for r in sp.search if r.get("calibrated") is False), None)
    row["first_prediction_error"] = first and first["prediction_error"]  # before calibration
    row["within_10pct"] = abs(row["speedup"] / target - 1) <= 0.1
    row["load_avg_after"] = os.getloadavg()
    return row


def _torch_pruning(dense, x, macs_ours, args, multiple, row) -> list[dict[str, Any]]:
    """Torch-Pruning matched to our MACs (an incumbent failing on a model is a result)."""
    try:
        if args.no_tp:
            raise RuntimeError("skipped (--no-tp)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs, info = tp_matched(dense, x, macs_ours, args.tp_steps,
                                    args.round_to or multiple)
        row.update(info, tp_macs=[r["macs"] for r in runs])
        return runs
    except Exception as exc:  # noqa: BLE001
        row["tp_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
        return []


def _speedups(row: dict, timed: timing.PairedTiming, tp_runs: list, macs0: int,
              macs_ours: int) -> None:
    """Speedups (median, per-round range) and ρ of every timed model; Torch-Pruning's at
    our MACs, interpolated in log-MACs when it is a bracketing pair."""
    def sp(name: str) -> dict[str, Any]:
        return timed.speedup("dense", name)

    ours = sp("prunekit")
    row.update(speedup=ours["speedup"], speedup_range=[ours["min"], ours["max"]],
               rho=ours["speedup"] / row["macs_ratio"])
    for key, name, macs_key in (("floor", "width_floor", "floor_macs_ratio"),
                                ("wd", "prunekit_wd", "wd_macs_ratio")):
        if name in row["ms"]:
            s = sp(name)
            row[f"{key}_speedup"], row[f"{key}_speedup_range"] = s["speedup"], [s["min"], s["max"]]
            row[f"{key}_rho"] = s["speedup"] / row[macs_key]
    if tp_runs:
        speeds = [sp(f"torch_pruning_{i}")["speedup"] for i in range(len(tp_runs))]
        if len(tp_runs) == 1:
            row["tp_speedup"], row["tp_macs_ratio"] = speeds[0], macs0 / tp_runs[0]["macs"]
        else:
            a, b = (math.log(r["macs"]) for r in tp_runs)
            t = (math.log(macs_ours) - a) / (b - a)
            row["tp_speedup"] = speeds[0] + t * (speeds[1] - speeds[0])
            row["tp_macs_ratio"] = row["macs_ratio"]
        row["tp_rho"] = row["tp_speedup"] / row["tp_macs_ratio"]


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


COLUMNS = ["model", "batch", "target", "width: MAC red. → speedup [range] (ρ)",
           "TP at same MACs: MAC red. → speedup (ρ)",
           "width or depth: chosen, MAC red. → speedup (ρ)",
           "prune s: cold / warm / w-or-d, TP run / TP match"]


def table_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """The rows as the table the README shows (missing columns as "—")."""
    out = []
    for r in rows:
        g = r.get
        wd = "—"
        if g("wd_kind"):
            kinds = {c["kind"]: c for c in g("wd_candidates", [])}
            n = kinds.get(g("wd_kind"), {}).get("blocks_removed")
            units = f" ({n} units)" if n else ""
            wd = (f"{g('wd_kind')}{units} {_fmt(g('wd_macs_ratio'))} → "
                  f"{_fmt(g('wd_speedup'))} ({_fmt(g('wd_rho'))})")
        lo, hi = g("speedup_range") or (None, None)
        out.append([r["model"], str(r["batch"]), f"{r['target']:g}×",
                    f"{_fmt(g('macs_ratio'))} → {_fmt(g('speedup'))} [{_fmt(lo)}–{_fmt(hi)}] "
                    f"({_fmt(g('rho'))})",
                    f"{_fmt(g('tp_macs_ratio'))} → {_fmt(g('tp_speedup'))} ({_fmt(g('tp_rho'))})"
                    + (" interp." if str(g("tp_match", "")).startswith("bracket") else ""),
                    wd, f"{_fmt(g('prune_s'), '.1f')} / {_fmt(g('prune_warm_s'), '.1f')} / "
                        f"{_fmt(g('wd_prune_s'), '.1f')}, {_fmt(g('tp_prune_s'), '.1f')} / "
                        f"{_fmt(g('tp_match_s'), '.1f')}"])
    return out


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    plt = plots.pyplot()
    labels = [f"{r['model']}\nb{r['batch']} {r['target']:g}x" for r in rows]
    pos = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rows)), 4))
    series = [("speedup", "prunekit (width)"), ("tp_speedup", "Torch-Pruning (same MACs)")]
    if any("wd_speedup" in r for r in rows):
        series.append(("wd_speedup", "prunekit width or depth"))
    width = 0.8 / len(series)
    for i, (key, label) in enumerate(series):  # bars side by side, centred on each model
        shift = (i - (len(series) - 1) / 2) * width
        ax.bar([p + shift for p in pos], [r.get(key, 0) for r in rows], width, label=label)
    ax.scatter(list(pos), [r["target"] for r in rows], marker="_", s=400, c="k", label="target")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(list(pos), labels, fontsize=7)
    ax.set_ylabel("measured speedup vs dense (median)")
    ax.legend(fontsize=8)
    plots.save(fig, path)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = harness.parser("realized_speedup", __doc__, smoke_help="tiny model, one config")
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--configs", nargs="*", default=[],
                   help="explicit runs MODEL:BATCH:TARGET in this order (instead of the grid)")
    p.add_argument("--batches", nargs="*", type=int)
    p.add_argument("--targets", nargs="*", type=float, default=list(TARGETS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--levels", type=int, default=8)
    p.add_argument("--round-to", type=int, help="channel multiple (default: width probe)")
    p.add_argument("--rounds", type=int, default=2, help="ABBA rounds per search measurement")
    p.add_argument("--search-repeats", type=int, default=3,
                   help="timed runs per model timing inside prune_to_speedup (median)")
    p.add_argument("--final-rounds", type=int, default=6, help="final paired ABBA rounds")
    p.add_argument("--warmup", type=int, default=1, help="final timing: warm-up runs")
    p.add_argument("--repeats", type=int, default=5, help="final timing: runs per round")
    p.add_argument("--min-timing-ms", type=float, default=300.0,
                   help="final timing (CPU): at least this many ms of runs per round")
    p.add_argument("--no-warm-rerun", dest="warm_rerun", action="store_false",
                   help="skip the second (warm-cache) prune that measures warm prune time")
    p.add_argument("--tp-steps", type=int, default=14, help="Torch-Pruning bisection runs")
    p.add_argument("--no-tp", action="store_true", help="skip Torch-Pruning")
    p.add_argument("--floor", action="store_true",
                   help="also time the width floor (every group cut by 0.9)")
    p.add_argument("--width-or-depth", action="store_true",
                   help="also prune with structures=['depth', 'channels'] (width or depth)")
    p.add_argument("--prefer", default="macs", choices=["macs", "fidelity", "speed"],
                   help="width-or-depth: which candidate meeting the target to apply")
    args = p.parse(argv)
    if args.smoke:
        args.models, args.batches, args.targets = ["tiny"], [1], [1.5]
        args.rounds, args.final_rounds, args.repeats, args.tp_steps = 1, 2, 3, 6
        args.configs, args.threads = [], 2
        args.levels, args.round_to = 4, 8
    return args


def _spec(args: argparse.Namespace) -> tuple[DeviceSpec, list[int]]:
    if torch.device(args.device).type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda but CUDA is not available on this machine")
        return (DeviceSpec(args.device, args.threads, torch.float16, channels_last=True),
                args.batches or list(CUDA_BATCHES))
    return DeviceSpec(args.device, args.threads), args.batches or list(CPU_BATCHES)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    spec, batches = _spec(args)
    console = Console(width=150)
    out = Path(args.out) if args.out else harness.out_path(
        args, "realized_speedup" if args.smoke else
        f"realized_speedup_{torch.device(args.device).type}_{args.threads}thread")
    runs = [(n, int(b), float(t)) for n, b, t in (c.split(":") for c in args.configs)] or \
        [(n, b, t) for n in args.models for b in batches for t in args.targets]
    doc: dict[str, Any] = {"device": {"device": spec.device, "threads": spec.threads,
                                      "dtype": str(spec.dtype),
                                      "channels_last": spec.channels_last},
                           "prunekit_cache": str(cache_dir()), "rows": []}
    with harness.session(args) as rec:
        for name, batch, target in runs:
            doc["rows"].append(run_one(name, batch, target, spec, args, console))
            doc["table"] = {"columns": COLUMNS, "rows": table_rows(doc["rows"])}
            rec.write(out, doc, complete=len(doc["rows"]) == len(runs))
        if args.img_dir is not None:
            plot(doc["rows"], args.img_dir / f"{out.stem}.png")
    tables.show("realized speedup (measured, medians) — prunekit vs Torch-Pruning", COLUMNS,
                doc["table"]["rows"], width=150)
    console.print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main()
