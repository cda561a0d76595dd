"""Realized speedup: dense vs prunekit (``target_speedup``) vs Torch-Pruning, measured.

For every (model, batch size, target) the script

* prunes a copy with :func:`prunekit.hardware.prune_to_speedup` (hardware widths from the
  cached probe, measured latency model, measured search; prune time includes all of it),
  then prunes once more with the cache now warm (``prune_s`` cold vs ``prune_warm_s``;
  ``layer_timings`` counts the layer timings that missed the cache; the cache,
  ``$PRUNEKIT_CACHE``, is shared by every row of a run, so later rows reuse layer shapes);
* prunes another copy with Torch-Pruning's ``MagnitudePruner`` (L2 magnitude,
  ``round_to=8``, classifier ignored), its channel ratio bisected so that its MACs match
  ours from below (``tp_prune_s`` is one pruning run, ``tp_match_s`` the whole search);
* times dense, prunekit and Torch-Pruning in alternating rounds on the same inputs, on the
  same device, and reports MAC reduction (theory), measured speedup and
  ``ρ = measured speedup / MAC reduction``, plus our latency model's prediction error.

Results (with machine, load average, versions) go to
``benchmarks/results/realized_speedup_<device>_<threads>thread.json`` (smoke:
``realized_speedup_smoke.json``); a plot to ``docs/img/speedup_<device>.png``.
CPU timing uses 1 intra-op thread by default (``--threads``).

Usage::

    .venv/bin/python benchmarks/realized_speedup.py                        # full CPU grid
    .venv/bin/python benchmarks/realized_speedup.py --configs resnet50:32:2 mobilenet_v2:32:2
    .venv/bin/python benchmarks/realized_speedup.py --smoke                # seconds
    .venv/bin/python benchmarks/realized_speedup.py --models resnet50 --batches 1 --targets 2
    .venv/bin/python benchmarks/realized_speedup.py --device cuda          # fp16 channels_last,
                                                                           # batch 256 and 1
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from prunekit.hardware import DeviceSpec, cache_dir, prune_to_speedup
from prunekit.hardware.timing import model_latency_fn, with_batch
from prunekit.measure import count_macs
from prunekit.measure.machine import machine_info

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
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
    torch.manual_seed(0)
    if name == "tiny":
        return Tiny().eval(), torch.randn(1, 3, 32, 32)
    import torchvision

    return torchvision.models.get_model(name, weights=None).eval(), torch.randn(1, 3, 224, 224)


def _classifier(model: nn.Module) -> nn.Module:
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def _tp_once(model: nn.Module, x: torch.Tensor, ratio: float) -> nn.Module:
    import torch_pruning as tp

    pruned = copy.deepcopy(model)
    heads = {m: m.num_heads for m in pruned.modules() if isinstance(m, nn.MultiheadAttention)}
    pruner = tp.pruner.MagnitudePruner(
        pruned, x, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=ratio,
        round_to=8, ignored_layers=[_classifier(pruned)], num_heads=heads)
    pruner.step()
    if hasattr(pruned, "hidden_dim") and hasattr(pruned, "conv_proj"):  # torchvision ViT
        pruned.hidden_dim = pruned.conv_proj.out_channels
    return pruned


def tp_matched(model: nn.Module, x: torch.Tensor, macs_goal: int,
               steps: int = 4) -> tuple[nn.Module, dict[str, Any]]:
    """Torch-Pruning at the channel ratio whose MACs come closest to ``macs_goal`` from
    below: bisection around ``1 − sqrt(goal / dense)`` (a layer between two pruned groups
    keeps ``(1 − r)²`` of its MACs), ``steps`` Torch-Pruning runs in all."""
    start = time.perf_counter()
    guess = 1.0 - (macs_goal / count_macs(model, x)) ** 0.5
    lo, hi, best = max(0.0, guess - 0.15), min(0.95, guess + 0.15), None
    for _ in range(steps):
        mid = (lo + hi) / 2
        t0 = time.perf_counter()
        cand = _tp_once(model, x, mid)
        once = time.perf_counter() - t0
        if count_macs(cand, x) <= macs_goal:
            hi, best = mid, (mid, cand, once)
        else:
            lo = mid
    if best is None:
        t0 = time.perf_counter()
        best = (hi, _tp_once(model, x, hi), 0.0)
        best = (best[0], best[1], time.perf_counter() - t0)
    ratio, pruned, once = best
    return pruned, {"tp_ratio": ratio, "tp_prune_s": once,
                    "tp_match_s": time.perf_counter() - start}


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


def timed_round_robin(models: dict[str, nn.Module], fn: Any, rounds: int) -> dict[str, float]:
    """Median latency (ms) per model over ``rounds`` rounds in rotating order."""
    names, samples = list(models), {n: [] for n in models}
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            samples[n].append(fn(models[n]))
    return {n: statistics.median(v) for n, v in samples.items()}


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
    fn = model_latency_fn(with_batch(x, batch), spec, warmup=args.warmup, repeats=args.repeats,
                          min_total_ms=args.min_timing_ms)
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
    try:
        if args.no_tp:
            raise RuntimeError("skipped (--no-tp)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tp_model, tp_info = tp_matched(dense, x, macs_ours, args.tp_steps)
        row.update(tp_info, tp_macs_ratio=macs0 / count_macs(tp_model, x))
        models["torch_pruning"] = tp_model
    except Exception as exc:  # an incumbent failing on a model is a result
        row["tp_error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if args.floor:
        models["width_floor"] = width_floor(dense, x)
        row["floor_macs_ratio"] = macs0 / count_macs(models["width_floor"], x)
    if args.width_or_depth:
        log("width or depth (prunekit.prune(..., structures=['depth', 'channels']))")
        models["prunekit_wd"], info = width_or_depth(dense, x, batch, target, spec, args)
        row.update(info, wd_macs_ratio=macs0 / count_macs(models["prunekit_wd"], x))
    log("final round-robin timing")
    ms = timed_round_robin(models, fn, args.final_rounds)
    row.update(ms=ms, macs_ratio=macs0 / macs_ours)
    if "width_floor" in ms:
        row["floor_speedup"] = ms["dense"] / ms["width_floor"]
        row["floor_rho"] = row["floor_speedup"] / row["floor_macs_ratio"]
    if "prunekit_wd" in ms:
        row["wd_speedup"] = ms["dense"] / ms["prunekit_wd"]
        row["wd_rho"] = row["wd_speedup"] / row["wd_macs_ratio"]
    row["speedup"] = ms["dense"] / ms["prunekit"]
    row["rho"] = row["speedup"] / row["macs_ratio"]
    row["within_10pct"] = abs(row["speedup"] / target - 1) <= 0.1
    rescaled = ms["prunekit"] * sp.model_dense_ms / ms["dense"]  # on the model's dense time
    row["prediction_error"] = sp.predicted_ms / rescaled - 1
    first = next((r for r in sp.search if r.get("calibrated") is False), None)
    row["first_prediction_error"] = first and first["prediction_error"]  # before calibration
    if "torch_pruning" in ms:
        row["tp_speedup"] = ms["dense"] / ms["torch_pruning"]
        row["tp_rho"] = row["tp_speedup"] / row["tp_macs_ratio"]
    row["load_avg_after"] = os.getloadavg()
    return row


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "—" if v is None else format(v, spec)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as the Markdown table the README and docs/speedup.md show (missing
    columns as "—"): width, Torch-Pruning and width-or-depth as MAC reduction → measured
    speedup (ρ), and prune seconds."""
    lines = ["| model | batch | target | width: MAC red. → speedup (ρ) | TP at same MACs: "
             "MAC red. → speedup (ρ) | width or depth: chosen, MAC red. → speedup (ρ) | "
             "prune s: cold / warm / w-or-d, TP run / TP match |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        g = r.get
        wd = "—"
        if g("wd_kind"):
            kinds = {c["kind"]: c for c in g("wd_candidates", [])}
            n = kinds.get(g("wd_kind"), {}).get("blocks_removed")
            units = f" ({n} units)" if n else ""
            wd = (f"{g('wd_kind')}{units} {_fmt(g('wd_macs_ratio'))} → "
                  f"{_fmt(g('wd_speedup'))} ({_fmt(g('wd_rho'))})")
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['target']:g}× | {_fmt(g('macs_ratio'))} → "
            f"{_fmt(g('speedup'))} ({_fmt(g('rho'))}) | {_fmt(g('tp_macs_ratio'))} → "
            f"{_fmt(g('tp_speedup'))} ({_fmt(g('tp_rho'))}) | {wd} | "
            f"{_fmt(g('prune_s'), '.1f')} / {_fmt(g('prune_warm_s'), '.1f')} / "
            f"{_fmt(g('wd_prune_s'), '.1f')}, {_fmt(g('tp_prune_s'), '.1f')} / "
            f"{_fmt(g('tp_match_s'), '.1f')} |")
    return "\n".join(lines) + "\n"


def print_table(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="realized speedup (measured) — prunekit vs Torch-Pruning (matched MACs)")
    for col in ("model", "batch", "target", "MAC red.", "speedup", "ρ", "pred err", "1st err",
                "prune s cold/warm", "TP speedup", "TP ρ", "TP s", "met", "w|d kind",
                "w|d speedup", "w|d ρ", "w|d s"):
        table.add_column(col, justify="right")
    f = lambda v, p=2: "—" if v is None else f"{v:.{p}f}"  # noqa: E731
    for r in rows:
        table.add_row(r["model"], str(r["batch"]), f"{r['target']:g}x", f(r["macs_ratio"]),
                      f(r["speedup"]), f(r["rho"]), f"{r['prediction_error']:+.1%}",
                      "—" if r["first_prediction_error"] is None else
                      f"{r['first_prediction_error']:+.1%}",
                      f"{f(r['prune_s'], 1)}/{f(r.get('prune_warm_s'), 1)}",
                      f(r.get("tp_speedup")), f(r.get("tp_rho")),
                      f(r.get("tp_prune_s"), 1), "yes" if r["met"] else "no",
                      r.get("wd_kind", "—"), f(r.get("wd_speedup")), f(r.get("wd_rho")),
                      f(r.get("wd_prune_s"), 1))
    console.print(table)


def plot_path(args: argparse.Namespace, out: Path) -> Path:
    """``--plot``, else beside the JSON: a partial re-run must not replace the README's
    whole-grid figure (``docs/img/speedup_cpu.png``, drawn only when asked for)."""
    return args.plot or out.with_suffix(".png")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    ax.set_ylabel("measured speedup vs dense")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny model, one config, seconds")
    p.add_argument("--models", nargs="*", default=list(MODELS))
    p.add_argument("--configs", nargs="*", default=[],
                   help="explicit runs MODEL:BATCH:TARGET in this order (instead of the grid)")
    p.add_argument("--batches", nargs="*", type=int)
    p.add_argument("--targets", nargs="*", type=float, default=list(TARGETS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--levels", type=int, default=8)
    p.add_argument("--round-to", type=int, help="channel multiple (default: width probe)")
    p.add_argument("--rounds", type=int, default=2, help="ABBA rounds per search measurement")
    p.add_argument("--search-repeats", type=int, default=3,
                   help="timed runs per model timing inside prune_to_speedup (median)")
    p.add_argument("--final-rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=1, help="final timing: warm-up runs")
    p.add_argument("--repeats", type=int, default=5, help="final timing: runs (median)")
    p.add_argument("--min-timing-ms", type=float, default=300.0,
                   help="final timing (CPU): at least this many ms of runs per timing")
    p.add_argument("--no-warm-rerun", dest="warm_rerun", action="store_false",
                   help="skip the second (warm-cache) prune that measures warm prune time")
    p.add_argument("--tp-steps", type=int, default=4)
    p.add_argument("--no-tp", action="store_true", help="skip Torch-Pruning")
    p.add_argument("--floor", action="store_true",
                   help="also time the width floor (every group cut by 0.9)")
    p.add_argument("--width-or-depth", action="store_true",
                   help="also prune with structures=['depth', 'channels'] (width or depth)")
    p.add_argument("--prefer", default="macs", choices=["macs", "fidelity", "speed"],
                   help="width-or-depth: which candidate meeting the target to apply")
    p.add_argument("--out", type=Path)
    p.add_argument("--append", action="store_true", help="add rows to an existing --out")
    p.add_argument("--plot", type=Path,
                   help="where to draw the rows (default: --out with .png; the README's "
                        "figure is docs/img/speedup_cpu.png)")
    p.add_argument("--markdown", type=Path,
                   help="also write every row of --out as a Markdown table to this file")
    p.add_argument("--markdown-only", action="store_true",
                   help="only rewrite --markdown from the rows already in --out (no runs)")
    args = p.parse_args(argv)
    if args.smoke:
        args.models, args.batches, args.targets = ["tiny"], [1], [1.5]
        args.rounds, args.final_rounds, args.repeats, args.tp_steps = 1, 2, 3, 3
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
    out = args.out or RESULTS / ("realized_speedup_smoke.json" if args.smoke else
                                 f"realized_speedup_{torch.device(args.device).type}"
                                 f"_{args.threads}thread.json")
    doc: dict[str, Any] = {"machine": machine_info(), "load_avg_start": os.getloadavg(),
                           "device": {"device": spec.device, "threads": spec.threads,
                                      "dtype": str(spec.dtype),
                                      "channels_last": spec.channels_last},
                           "config": {k: str(v) if isinstance(v, Path) else v
                                      for k, v in vars(args).items()},
                           "rows": []}
    if args.markdown_only:
        if not (args.markdown and out.exists()):
            raise SystemExit("--markdown-only needs --markdown and an existing --out")
        args.markdown.write_text(markdown_table(json.loads(out.read_text())["rows"]))
        return json.loads(out.read_text())
    if args.append and out.exists():
        doc["rows"] = json.loads(out.read_text())["rows"]
    import torch_pruning
    import torchvision

    doc["machine"].update(torch_pruning=torch_pruning.__version__,
                          torchvision=torchvision.__version__,
                          prunekit_cache=str(cache_dir()))
    torch.set_num_threads(spec.threads or torch.get_num_threads())
    runs = [(n, int(b), float(t)) for n, b, t in (c.split(":") for c in args.configs)] or \
        [(n, b, t) for n in args.models for b in batches for t in args.targets]
    for name, batch, target in runs:
        doc["rows"].append(run_one(name, batch, target, spec, args, console))
        doc["load_avg_end"] = os.getloadavg()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1, default=str))
    print_table(doc["rows"], console)
    if not args.smoke or args.plot:
        plot(doc["rows"], plot_path(args, out))
    if args.markdown:
        args.markdown.write_text(markdown_table(doc["rows"]))
    console.print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main()
