"""Structured pruning of a small VGG-style CNN on Fashion-MNIST, fairly, and why ρ < 1.

One seed per command (``--seed``), one result file (``training_vgg_s<seed>.json``):

* dense: conv blocks 32-32-pool-64-64-pool-128-128-pool (3×3, BatchNorm, ReLU), then
  Linear(1152, 256)-ReLU-Linear(256, 10), trained on the training images minus a
  validation split carved from them (``--dense-curve``: train/val accuracy per epoch,
  to choose ``--dense-epochs`` on validation);
* at each MAC budget (``--budgets``), under one declared comparison with **the same total
  epochs** for every method (``--prox-epochs`` + ``--finetune-epochs``):
  - prunekit proximal group lasso in budget mode (survivors restart from the dense weights,
    then fine-tuning);
  - the same selection with its widths rounded *down* to ``--round-multiple`` (weakest L2
    channels go; hardware-aware widths), same fine-tuning;
  - Torch-Pruning (as its docs say: group L2 magnitude, output layer ignored) at the MACs
    of the GL model, within 1 % or interpolated between the two nearest runs, fine-tuned
    for the whole budget;
  - Torch-Pruning at **prunekit's own widths** (its channel choice, our allocation: this
    separates *allocation* from *selection*), fine-tuned for the whole budget.

Every row: test accuracy (one read per row), parameters, MACs and measured CPU latency
(batch 256) timed against dense in paired ABBA rounds (medians, every reading kept), and
ρ = measured speedup / MAC reduction; every row is re-timed from its widths in the
deployment modes ``--retime-modes`` (eager, BN folded, frozen TorchScript); a per-layer
profile (median of forward-hook times, MACs) shows where the speedup is lost.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/training_vgg.py --seed 0
    python benchmarks/training_vgg.py --dense-curve --seed 0   # choose --dense-epochs (val)
    python benchmarks/training_vgg.py --smoke                  # seconds, synthetic data
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks import training_methods as tm  # noqa: E402
from benchmarks.harness import incumbents, plots, tables, timing  # noqa: E402
from benchmarks.harness.rules import Comparison, Method, RuleViolation  # noqa: E402
from prunekit.methods import Budget, FitConfig, evaluate, fit  # noqa: E402
from prunekit.methods.recovery import epoch_batches  # noqa: E402

WIDTHS = (32, 32, 64, 64, 128, 128)
ROUNDED = "prunekit proximal GL, widths rounded down"
TP_OURS = "Torch-Pruning at prunekit's widths"
console = Console()


def vgg_cnn(widths: tuple[int, ...] = WIDTHS, hidden: int = 256,
            classes: int = 10) -> nn.Sequential:
    """VGG-style CNN for 1×28×28 inputs: 3×3 conv-BN-ReLU, a 2×2 max-pool after every
    second conv (28 → 14 → 7 → 3), then Linear(c·9, hidden)-ReLU-Linear(hidden, classes)."""
    layers: list[nn.Module] = []
    c = 1
    for i, out in enumerate(widths):
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        c = out
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
    side = 28 // 2 ** (len(widths) // 2)
    layers += [nn.Flatten(), nn.Linear(c * side * side, hidden), nn.ReLU(),
               nn.Linear(hidden, classes)]
    return nn.Sequential(*layers)


def rebuilt(widths: list[int]) -> nn.Sequential:
    """A VGG-style CNN at a row's widths (dense kernels do not depend on weight values)."""
    return vgg_cnn(tuple(widths[:-2]), widths[-2]).eval()


# ---------------------------------------------------------------- deployment forms
def fold_bn(model: nn.Sequential) -> nn.Sequential:
    """A copy with every Conv2d→BatchNorm2d pair fused into one conv (eval mode):
    ``W' = W·γ/√(σ²+ε)``, ``b' = (b − μ)·γ/√(σ²+ε) + β``; the BN becomes Identity."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    out = copy.deepcopy(model).eval()
    for i in range(len(out) - 1):
        if isinstance(out[i], nn.Conv2d) and isinstance(out[i + 1], nn.BatchNorm2d):
            out[i] = fuse_conv_bn_eval(out[i], out[i + 1])
            out[i + 1] = nn.Identity()
    return out


def freeze(model: nn.Module) -> nn.Module:
    """TorchScript-frozen and ``optimize_for_inference`` (oneDNN layout, BN folded, conv
    and ReLU fused): an inference graph with less elementwise overhead. TorchScript is
    deprecated upstream but present in torch 2.11-2.14."""
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(copy.deepcopy(model).eval())
        return torch.jit.optimize_for_inference(torch.jit.freeze(scripted))


DEPLOY = {"eager": lambda m: m.eval(), "bn_folded": fold_bn, "frozen": freeze}


# ---------------------------------------------------------------- profile
def layer_profile(model: nn.Sequential, x: torch.Tensor, repeats: int = 3) -> list[dict]:
    """Per top-level module: forward time (ms, forward hooks; one thread runs the ops
    synchronously) — every reading and their median — and MACs, at the timing batch."""
    from prunekit.measure import macs_by_module

    macs = macs_by_module(model, x[:1])
    times: dict[int, list[float]] = {i: [] for i in range(len(model))}
    start: dict[int, float] = {}
    hooks = []
    for i, mod in enumerate(model):
        hooks.append(mod.register_forward_pre_hook(
            lambda _m, _a, i=i: start.__setitem__(i, time.perf_counter())))
        hooks.append(mod.register_forward_hook(
            lambda _m, _a, _o, i=i: times[i].append(1e3 * (time.perf_counter() - start[i]))))
    model.eval()
    try:
        with torch.no_grad():
            model(x)  # warm-up, not kept
            for t in times.values():
                t.clear()
            for _ in range(repeats):
                model(x)
    finally:
        for h in hooks:
            h.remove()
    return [{"index": i, "type": type(m).__name__, "ms": statistics.median(times[i]),
             "readings_ms": times[i], "macs": int(macs.get(str(i), 0)) * len(x)}
            for i, m in enumerate(model)]


def profile_summary(dense_prof: list[dict], prof: list[dict]) -> dict:
    """Time by module type (dense vs pruned) and the per-type speedups."""
    out: dict[str, dict] = {}
    for kind in sorted({p["type"] for p in dense_prof}):
        d = sum(p["ms"] for p in dense_prof if p["type"] == kind)
        m = sum(p["ms"] for p in prof if p["type"] == kind)
        dm = sum(p["macs"] for p in dense_prof if p["type"] == kind)
        pm = sum(p["macs"] for p in prof if p["type"] == kind)
        out[kind] = {"dense_ms": d, "ms": m, "speedup": d / max(m, 1e-9),
                     "mac_reduction": dm / pm if pm else None}
    return out


# ---------------------------------------------------------------- methods
def round_widths(model: nn.Module, x: torch.Tensor, multiple: int) -> dict[str, int]:
    """Round every group's kept width down to a multiple of ``multiple`` (widths below it
    stay), cutting the weakest channels by L2 norm with :func:`prunekit.surgery.
    remove_channels` (all or nothing). Returns ``{group id: channels removed}``."""
    from prunekit.graph import build_groups
    from prunekit.importance import score_groups
    from prunekit.surgery import remove_channels

    gs = build_groups(model, x[:2])
    groups = [g for g in gs.groups if getattr(g, "prunable", True)]
    scores = score_groups(model, groups, "l2")
    plan = {}
    for g in groups:
        keep = (g.size // multiple) * multiple if g.size >= multiple else g.size
        if keep < g.size:
            plan[g.id] = torch.argsort(scores[g.id])[:g.size - keep].tolist()
    if plan:
        remove_channels(model, gs, plan, x[:2])
    return {gid: len(ch) for gid, ch in plan.items()}


def _prox_select(dense, train, x, args, budget, lam, weights, min_keep, val=None):
    """``training_methods.prox_select`` plus a trace of the budget dynamics.

    ``info["trajectory"]``: every ``--trace-every`` steps and at each epoch end, λ and
    (budget mode) ``zeros`` = cost of the exact zeros alone / B (≤ 1: the zeros meet the
    budget themselves); at epoch ends also ``landed`` (cost of what ``finalize`` would cut
    had the run stopped there / B) and the kept widths. With ``--epoch-accuracy`` and
    ``val``, each epoch's (debiased) selection is also fine-tuned like the final one and
    its **validation** accuracy recorded (a curve to choose ``--prox-epochs`` on)."""
    per_epoch = len(epoch_batches(len(train[1]), FitConfig().batch_size, args.seed, 0))
    trace: list[dict] = []
    plans: dict[int, dict[str, list[int]]] = {}

    def on_step(step: int, _model: nn.Module, opt) -> None:
        target = budget.fraction * opt.dense_cost if budget is not None else None
        if step == 0:
            trace.append(_trace_point(opt, 0, target))
            return
        end = step % per_epoch == 0
        if end or step % args.trace_every == 0:
            trace.append(_trace_point(opt, step, target))
        if end and target is not None:
            plan = opt.removal_plan()
            plans[step // per_epoch] = plan
            trace[-1].update(epoch=step // per_epoch, landed=opt.current_cost(plan) / target,
                             kept={g.id: g.size - len(plan.get(g.id, [])) for g in opt.groups})

    model, opt, info = tm.prox_select(dense, train, x, args, budget, lam, weights,
                                      min_keep=min_keep, on_step=on_step)
    if args.epoch_accuracy and val is not None and args.debias:
        _epoch_accuracy(trace, plans, dense, train, val, x, args)
    info["trajectory"] = trace
    return model, info


def _trace_point(opt, step: int, target: float | None) -> dict:
    point = {"step": step, "lam": opt.lam}
    if target is not None:
        point["zeros"] = opt.current_cost() / target
    return point


def _epoch_accuracy(trace, plans, dense, train, val, x, args) -> None:
    """Fine-tune each earlier epoch's selection; its validation accuracy into the trace."""
    from prunekit.graph import build_groups
    from prunekit.measure import count_macs
    from prunekit.surgery import remove_channels

    done: list[tuple[dict, dict]] = []
    for point in trace:
        plan = plans.get(point.get("epoch", -1))
        if plan is None or point["epoch"] == args.prox_epochs:  # the last: the main row
            continue
        same = [res for p, res in done if p == plan]
        if same:
            point.update(same[0])
            continue
        model = copy.deepcopy(dense)
        remove_channels(model, build_groups(model, x[:2]), plan, x[:2])
        tm.finetune(model, train, args, args.finetune_epochs)
        res = {"val_accuracy": evaluate(model, val), "macs": count_macs(model, x[:1]),
               "widths": tm._widths(model)}
        done.append((plan, res))
        point.update(res)


def tp_at_widths(dense: nn.Module, x: torch.Tensor, widths: list[int]) -> nn.Module:
    """Torch-Pruning's own channel choice (group L2) at prunekit's per-layer widths."""
    layers = [m for m in dense.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]
    model = copy.deepcopy(dense)
    twins = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]
    ratios = {t: 1.0 - w / (m.weight.shape[0]) for t, m, w in zip(twins, layers, widths)
              if w < m.weight.shape[0]}
    incumbents.torch_pruning(model, x[:1], 0.0, ratio_dict=ratios)
    if tm._widths(model) != widths:
        raise RuleViolation("incumbent as documented", f"Torch-Pruning landed widths "
                            f"{tm._widths(model)}, not {widths}")
    return model


def mac_level(dense, data: harness.Splits, x, args, fraction: float) -> tuple[list, list]:
    """GL, its rounded variant, Torch-Pruning at matched MACs and at GL's widths."""
    level = f"{1 / fraction:g}x MACs"
    total = args.prox_epochs + args.finetune_epochs
    cmp = Comparison(f"VGG {level}", [Method(tm.GL, total, args.gl_grid),
                                      Method(tm.TP, total, args.tp_grid, incumbent=True)],
                     "epochs", matched_macs=True)
    gl = tm._gl_run(dense, data, x, args, cmp, fraction, level)
    rows = [gl, *tm._tp_runs(dense, data, x, args, cmp, gl, level)]
    cmp.check_spent()
    cmps = [cmp]
    if args.round_multiple > 1:
        rows += _rounded(dense, data, x, args, fraction, level, cmps)
    if args.tp_at_our_widths:
        rows.append(_tp_ours(dense, data, x, args, gl, level, cmps))
    return rows, cmps


def _rounded(dense, data, x, args, fraction, level, cmps) -> list[dict]:
    """GL's selection rounded down to ×multiple, fine-tuned alike, vs Torch-Pruning at its
    MACs (the same budget)."""
    total = args.prox_epochs + args.finetune_epochs
    cmp = Comparison(f"VGG {level}, rounded", [
        Method(ROUNDED, total), Method(tm.TP, total, incumbent=True)], "epochs",
        matched_macs=True)
    keep = tm.min_keep_for(dense, x, args, fraction)
    model, info = _prox_select(dense, data.train, x, args, Budget(fraction, "macs",
                               dual_lr=args.dual_lr), args.lam0, args.weights, keep)
    info["rounded_removed"] = round_widths(model, x, args.round_multiple)
    tm.finetune(model, data.train, args, args.finetune_epochs)
    cmp.spend(ROUNDED, total)
    row = tm.measure(model, data, f"{level} {ROUNDED}", args, dense=dense, method=ROUNDED,
                     level=level, role="prunekit", widths=tm._widths(model),
                     **{k: v for k, v in info.items() if k != "widths"})
    tp_rows = tm._tp_runs(dense, data, x, args, cmp, row, level)
    for r in tp_rows:
        r["matched_to"] = ROUNDED
    cmp.check_spent()
    cmps.append(cmp)
    return [row, *tp_rows]


def _tp_ours(dense, data, x, args, gl: dict, level: str, cmps) -> dict:
    """Torch-Pruning's channel choice at GL's widths, fine-tuned for the whole budget."""
    total = args.prox_epochs + args.finetune_epochs
    cmp = Comparison(f"VGG {level}, allocation vs selection", [
        Method(tm.GL, total), Method(TP_OURS, total, incumbent=True)], "epochs")
    cmp.spend(tm.GL, total)
    model = tp_at_widths(dense, x, gl["widths"])
    harness.seed_all(args.seed)
    tm.finetune(model, data.train, args, total)
    cmp.spend(TP_OURS, total)
    cmp.check_spent()
    cmps.append(cmp)
    return tm.measure(model, data, f"{level} {TP_OURS}", args, dense=dense, method=TP_OURS,
                      level=level, role="incumbent", match="same widths", matched_to=tm.GL,
                      widths=tm._widths(model))


# ---------------------------------------------------------------- driver
def _dense_key(args, n: int, val: int, epochs: int) -> str:
    w = "-".join(map(str, args.widths))
    return f"vggc_{w}_{args.hidden}_s{args.seed}_n{n}_val{val}_e{epochs}_lr{args.lr:g}"


def dense_model(data: harness.Splits, args) -> nn.Module:
    harness.seed_all(args.seed)
    model = vgg_cnn(args.widths, args.hidden)
    key = _dense_key(args, len(data.train[1]), len(data.val[1]), args.dense_epochs)
    return tm.train_cached(model, key, data.train, args)


def dense_curve(data: harness.Splits, args) -> dict:
    """Dense train and **validation** accuracy after every epoch up to ``--dense-epochs``
    (choose the dense epochs on validation); every epoch's weights go to the dense cache
    under the key a run with that many epochs reads (``fit`` seeds each epoch's order by
    ``(seed, epoch)`` at a constant lr, so epoch k of a longer run is a k-epoch run)."""
    harness.seed_all(args.seed)
    model = vgg_cnn(args.widths, args.hidden)
    steps = len(epoch_batches(len(data.train[1]), FitConfig().batch_size, args.seed, 0))
    curve: list[dict] = []

    def on_step(step: int, m: nn.Module) -> None:
        if step % steps:
            return
        epoch = step // steps
        curve.append({"epoch": epoch, "val_accuracy": evaluate(m, data.val),
                      "train_accuracy": evaluate(m, data.train)})
        if not args.smoke:
            args.dense_cache.mkdir(parents=True, exist_ok=True)
            torch.save(m.state_dict(), args.dense_cache / (
                _dense_key(args, len(data.train[1]), len(data.val[1]), epoch) + ".pt"))

    fit(model, data.train, FitConfig(epochs=args.dense_epochs, lr=args.lr, seed=args.seed,
                                     progress=args.progress), on_step=on_step)
    return {"curve": curve}


def run(data: harness.Splits, args) -> tuple[dict, list]:
    t0 = time.time()
    dense = dense_model(data, args).eval()
    x = data.val[0][: args.latency_batch]
    rows = [tm.measure(dense, data, "dense vgg", args, dense=dense, method="dense", level="",
                       widths=tm._widths(dense))]
    cmps: list[Comparison] = []
    for fraction in args.budgets:
        level_rows, level_cmps = mac_level(dense, data, x, args, fraction)
        rows += level_rows
        cmps += level_cmps
    for r in rows:
        r["mac_reduction"] = rows[0]["macs"] / r["macs"]
        if "measured_speedup" in r:
            r["rho"] = r["measured_speedup"] / r["mac_reduction"]
    result = {"rows": rows, "wall_s": time.time() - t0}
    add_profiles(result, args)
    if args.retime_modes:
        retime(result, args)
    return result, cmps


def add_profiles(results: dict, args) -> None:
    """Profile dense and every row from its widths (rebuilt)."""
    x = torch.rand(args.latency_batch, 1, 28, 28, generator=harness.generator(0))
    dense_prof = layer_profile(rebuilt(results["rows"][0]["widths"]), x, args.repeats)
    prof: dict[str, Any] = {"dense": dense_prof}
    for r in results["rows"][1:]:
        if "widths" in r:
            p = layer_profile(rebuilt(r["widths"]), x, args.repeats)
            prof[f"{r['level']} | {r['method']} | {r['widths']}"] = {
                "layers": p, "by_type": profile_summary(dense_prof, p)}
    results["profile"] = prof


def retime(results: dict, args) -> None:
    """Every row re-timed from its widths against dense in each deployment mode (paired
    rounds): ``row["retime"][mode] = {dense_ms, ms, speedup, range, rho}``."""
    x = torch.rand(args.latency_batch, 1, 28, 28, generator=harness.generator(0))
    dense = rebuilt(results["rows"][0]["widths"])
    deployed = {mode: DEPLOY[mode](dense) for mode in args.retime_modes}
    for r in results["rows"][1:]:
        if "widths" not in r:
            continue
        model, r["retime"] = rebuilt(r["widths"]), {}
        for mode in args.retime_modes:
            t = timing.paired({"dense": deployed[mode], "model": DEPLOY[mode](model)}, x,
                              rounds=args.rounds, repeats=args.repeats, threads=args.threads)
            sp = t.speedup("dense", "model")
            r["retime"][mode] = {"dense_ms": t.median_ms("dense"), "ms": t.median_ms("model"),
                                 "speedup": sp["speedup"], "range": [sp["min"], sp["max"]],
                                 "rho": sp["speedup"] / r["mac_reduction"]}


# ---------------------------------------------------------------- output
def plot(rows: list[dict], path: Path) -> None:
    series: dict[str, list[dict]] = {}
    for r in rows[1:]:
        if r.get("match") != "bracket":
            series.setdefault(r["method"] + (f" @ {r['matched_to']}" if r.get("matched_to")
                                             else ""), []).append(r)
    plots.accuracy_curves(series, rows[0]["accuracy"],
                          (("mac_reduction", "MAC reduction (theory)"),),
                          "VGG-style CNN, Fashion-MNIST (same epochs)", path, figsize=(7, 4.5))


COLUMNS = ["level", "method", "match", "widths", "MAC red.", "speedup (range)", "ρ",
           "test accuracy"]


def table_rows(rows: list[dict]) -> list[list]:
    return [[r["level"], r["method"], r.get("match", ""), str(r.get("widths", "")),
             f"{r['mac_reduction']:.2f}",
             f"{r['measured_speedup']:.2f} ({r['speedup_range'][0]:.2f}–"
             f"{r['speedup_range'][1]:.2f})" if "measured_speedup" in r else "—",
             f"{r['rho']:.2f}" if "rho" in r else "—", f"{r['accuracy']:.4f}"] for r in rows]


def _widths_arg(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def parse(argv=None) -> argparse.Namespace:
    p = harness.parser("training_vgg", __doc__, smoke_help="synthetic data, seconds")
    p.add_argument("--widths", type=_widths_arg, default=WIDTHS, help="conv widths, e.g. 32,32,64")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--train-size", type=int, default=6000)
    p.add_argument("--dense-epochs", type=int, default=7)
    p.add_argument("--prox-epochs", type=int, default=5)
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--prox-lr", type=float, default=0.02)
    p.add_argument("--lam0", type=float, default=0.002)
    p.add_argument("--dual-lr", type=float, default=0.03)
    p.add_argument("--budgets", type=float, nargs="*", default=[0.25, 0.125])
    p.add_argument("--weights", default="sqrt")
    p.add_argument("--min-keep", type=tm._int_or_float, default=2)
    p.add_argument("--min-keep-rel", type=float, default=0.0,
                   help="if > 0: min width = this × the uniform width meeting the budget")
    p.add_argument("--gl-grid", type=tm._grid, default={},
                   help="GL grid chosen on val, e.g. min_keep_rel=0.7,0.8,0.9")
    p.add_argument("--tp-grid", type=tm._grid, default={},
                   help="Torch-Pruning grid (same size), e.g. lr=5e-4,1e-3,2e-3")
    p.add_argument("--round-multiple", type=int, default=8,
                   help="also round the GL widths down to this multiple (<= 1: off)")
    p.add_argument("--no-tp-at-our-widths", dest="tp_at_our_widths", action="store_false",
                   help="skip Torch-Pruning at prunekit's widths")
    p.add_argument("--trace-every", type=int, default=5,
                   help="record λ and the zeros' cost every this many proximal steps")
    p.add_argument("--epoch-accuracy", action="store_true",
                   help="also fine-tune each proximal epoch's selection (validation accuracy)")
    p.add_argument("--debias", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--latency-batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed passes per round")
    p.add_argument("--rounds", type=int, default=4, help="alternating ABBA rounds")
    p.add_argument("--retime-modes", nargs="*", default=["eager", "bn_folded", "frozen"],
                   choices=sorted(DEPLOY))
    p.add_argument("--dense-curve", action="store_true",
                   help="only the dense train/val curve (writes training_vgg_dense_curve)")
    p.add_operational("--progress", action="store_true")
    p.add_operational("--dense-cache", type=Path,
                      default=Path.home() / ".cache" / "prunekit" / "bench")
    args = p.parse(argv)
    if args.smoke:
        args.widths, args.hidden = tuple(max(2, w // 8) for w in args.widths), 16
        args.dense_epochs = args.prox_epochs = args.finetune_epochs = 1
        args.latency_batch, args.repeats, args.rounds = 16, 1, 2
        args.budgets = args.budgets[:1]
        args.round_multiple = min(args.round_multiple, 2)
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    stem = "training_vgg_dense_curve" if args.dense_curve else "training_vgg"
    out = Path(args.out) if args.out else harness.out_path(args, f"{stem}_s{args.seed}")
    with harness.session(args) as rec:
        data = harness.fashion_mnist(args.train_size, args.seed, args.smoke)
        if args.dense_curve:
            result = dense_curve(data, args)
            rec.write(out, result, splits=data)
            return result
        try:
            result, cmps = run(data, args)
        except RuleViolation as err:
            raise SystemExit(f"refused: {err}") from err
        result["table"] = {"columns": COLUMNS, "rows": table_rows(result["rows"])}
        rec.write(out, result, comparison=cmps, splits=data)
        if args.img_dir is not None:
            plot(result["rows"], args.img_dir / f"{out.stem}.png")
    tables.show(f"VGG-style CNN (seed {args.seed})", COLUMNS, result["table"]["rows"])
    console.print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
