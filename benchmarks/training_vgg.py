"""Structured pruning of a small VGG-style CNN on Fashion-MNIST, and why ρ < 1.

In one run, on the same data, epochs and seed (issue 9, the VGG part):

* dense: conv blocks 32-32-pool-64-64-pool-128-128-pool (3×3, BatchNorm, ReLU), then
  Linear(1152, 256)-ReLU-Linear(256, 10);
* at each MAC budget (``--budgets``): proximal group lasso with MAC-proportional group
  weights in budget mode, and (at ``--fixed-budgets``) with a fixed λ (``--lam-factor`` ×
  the λ at which budget mode met its budget); survivors restart from the dense weights,
  then fine-tuning;
* the budget-mode model with its kept widths rounded *down* to multiples of
  ``--round-multiple`` (weakest L2 channels go; hardware-aware widths), same fine-tuning;
* optionally a latency budget (``--latency-budget``, predicted ms at batch 256 with
  latency-proportional group weights), set by default to the latency ratio the 8× MAC
  run measured;
* each prunekit model against Torch-Pruning magnitude (L2, uniform ratio) bisected to the
  MACs it reached, with the same fine-tuning.

Every row: accuracy, parameters, MACs and *measured* CPU latency (batch 256, 1 thread),
timed against the dense model in alternating ABBA rounds (fastest pass per round: load
only adds time), as is and with BatchNorm folded into the convolutions (how the model
would be deployed), and ρ = measured speedup / MAC reduction. A per-layer profile
(forward hooks; time and MACs per module, dense vs pruned) shows where the speedup is lost.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/training_vgg.py
    .venv/bin/python benchmarks/training_vgg.py --smoke      # seconds, synthetic data

Writes ``benchmarks/results/training_vgg[_smoke][_TAG].json`` and
``docs/img/training_vgg[_smoke][_TAG].png``. The dense model is cached in
``--dense-cache`` (keyed by widths, seed, data and epochs). Reuses the structured
helpers of ``benchmarks/training_methods.py`` (proximal run, Torch-Pruning matching,
minimum width relative to the budget).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "benchmarks") not in sys.path:  # appended: never shadows an installed package
    sys.path.append(str(ROOT / "benchmarks"))
import training_methods as tm  # noqa: E402

from prunekit.methods import Budget, FitConfig, evaluate, fit  # noqa: E402
from prunekit.methods.recovery import epoch_batches  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
WIDTHS = (32, 32, 64, 64, 128, 128)
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


# ---------------------------------------------------------------- measurement
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


def paired_ms(dense: nn.Module, model: nn.Module, x: torch.Tensor, args) -> tuple[float, float]:
    """(dense ms, model ms): fastest of ``--repeats`` passes per round, ``--rounds``
    alternating rounds (ABBA), medians over rounds."""
    from prunekit.hardware import DeviceSpec
    from prunekit.hardware.timing import paired_latency, time_placed

    spec = DeviceSpec("cpu", threads=args.threads)

    def fn(m: nn.Module) -> float:
        return time_placed(m.eval(), x, spec, 1, args.repeats, stat="min_ms")

    return paired_latency(dense, model, fn, args.rounds)


def layer_profile(model: nn.Sequential, x: torch.Tensor, repeats: int = 3) -> list[dict]:
    """Per top-level module: fastest forward time (ms, forward hooks; one thread runs the
    ops synchronously) and MACs, at the timing batch."""
    from prunekit.measure import macs_by_module

    macs = macs_by_module(model, x[:1])
    times = {i: float("inf") for i in range(len(model))}
    start: dict[int, float] = {}
    hooks = []
    for i, mod in enumerate(model):
        hooks.append(mod.register_forward_pre_hook(
            lambda _m, _a, i=i: start.__setitem__(i, time.perf_counter())))
        hooks.append(mod.register_forward_hook(
            lambda _m, _a, _o, i=i: times.__setitem__(
                i, min(times[i], 1e3 * (time.perf_counter() - start[i])))))
    model.eval()
    try:
        with torch.no_grad():
            for _ in range(repeats + 1):
                model(x)
    finally:
        for h in hooks:
            h.remove()
    return [{"index": i, "type": type(m).__name__, "ms": times[i],
             "macs": int(macs.get(str(i), 0)) * len(x)} for i, m in enumerate(model)]


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


def measure_row(model: nn.Module, ref: dict, test, x_lat, args, **extra) -> dict:
    """Accuracy, size, MACs and paired latency against dense (as is and BN-folded)."""
    from prunekit.measure import count_macs

    model.eval()
    dense_ms, ms = paired_ms(ref["model"], model, x_lat, args)
    fdense_ms, fms = paired_ms(ref["folded"], fold_bn(model), x_lat, args)
    macs = count_macs(model, x_lat[:1])
    row = {**extra, "accuracy": evaluate(model, test),
           "params": sum(p.numel() for p in model.parameters()), "macs": macs,
           "widths": tm._widths(model), "latency_ms": ms, "latency_dense_ms": dense_ms,
           "latency_folded_ms": fms, "latency_folded_dense_ms": fdense_ms}
    row["mac_reduction"] = ref["macs"] / macs
    row["measured_speedup"] = dense_ms / ms
    row["rho"] = row["measured_speedup"] / row["mac_reduction"]
    row["measured_speedup_folded"] = fdense_ms / fms
    row["rho_folded"] = row["measured_speedup_folded"] / row["mac_reduction"]
    return row


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


def _finetune(model: nn.Module, train, args) -> None:
    fit(model, train, FitConfig(epochs=args.finetune_epochs, lr=args.lr, seed=args.seed,
                                progress=args.progress))


def _prox_select(dense, train, x_lat, args, budget, lam, weights, min_keep, cost_model=None,
                 test=None):
    """Proximal GL from the dense weights (SGD + momentum, ``--prox-epochs``), finalized
    (debiased with ``--debias``: survivors restart from the dense weights), not yet
    fine-tuned. ``training_methods.prox_select`` plus a trace of the budget dynamics.

    ``info["trajectory"]``: every ``--trace-every`` steps and at each epoch end, λ and
    (budget mode) ``zeros`` = cost of the exact zeros alone / B (≤ 1: the zeros meet the
    budget themselves, no top-up); at epoch ends also ``landed`` (cost of what
    ``finalize`` would cut had the run stopped there, top-up included, / B) and the kept
    widths per group. With ``--epoch-accuracy`` and a ``test`` set, each epoch's selection
    (debiased) is also fine-tuned like the final one and its test accuracy recorded:
    accuracy against the number of proximal steps, in one run."""
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

    model, opt, info = tm.prox_select(dense, train, x_lat, args, budget, lam, weights,
                                      cost_model, min_keep, on_step=on_step)
    if args.epoch_accuracy and test is not None and args.debias:
        _epoch_accuracy(trace, plans, dense, train, test, x_lat, args)
    info["trajectory"] = trace
    console.log(f"prox: {opt.state.step} steps, λ {lam:g} → {opt.lam:.4g}, zeros alone "
                f"{trace[-1].get('zeros', float('nan')):.3f}·B, met at step "
                f"{opt.state.step_at_budget}")
    return model, info


def _trace_point(opt, step: int, target: float | None) -> dict:
    point = {"step": step, "lam": opt.lam}
    if target is not None:
        point["zeros"] = opt.current_cost() / target
    return point


def _epoch_accuracy(trace, plans, dense, train, test, x_lat, args) -> None:
    """Fine-tune each epoch's (debiased) selection; ``accuracy`` and ``macs`` into the
    trace's epoch points (a plan equal to the previous epoch's reuses its result: the
    fine-tuning is deterministic)."""
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
        remove_channels(model, build_groups(model, x_lat[:2]), plan, x_lat[:2])
        _finetune(model, train, args)
        res = {"accuracy": evaluate(model, test), "macs": count_macs(model, x_lat[:1]),
               "widths": tm._widths(model)}
        done.append((plan, res))
        point.update(res)
        console.log(f"  selection after epoch {point['epoch']}: acc {res['accuracy']:.4f} "
                    f"widths {res['widths']}")


def _with_tp(rows, model, info, ref, dense, train, test, x_lat, args, method, level) -> dict:
    """Measure a fine-tuned prunekit model, then Torch-Pruning matched to its MACs."""
    row = measure_row(model, ref, test, x_lat, args, method=method, level=level, **info)
    rows.append(row)
    console.log(f"[{level}] {method}: acc {row['accuracy']:.4f} MAC red "
                f"{row['mac_reduction']:.2f} speedup {row['measured_speedup']:.2f} "
                f"widths {row['widths']}")
    torch.manual_seed(args.seed)
    tpm, tinfo = tm.torch_pruning_matched(dense, train, x_lat, args, row["macs"])
    tp = measure_row(tpm, ref, test, x_lat, args, method="Torch-Pruning magnitude (matched MACs)",
                     matched_to=method, level=level, **tinfo)
    rows.append(tp)
    console.log(f"[{level}] Torch-Pruning: acc {tp['accuracy']:.4f} widths {tp['widths']} "
                f"speedup {tp['measured_speedup']:.2f}")
    _checkpoint(rows, args)
    return row


def mac_level(rows, ref, dense, train, test, x_lat, args, fraction: float) -> dict:
    """Budget mode (+ its width-rounded variant) and fixed λ at one MAC budget."""
    level = f"{1 / fraction:g}x MACs"
    keep = tm.min_keep_for(dense, x_lat, args, fraction)
    budget = Budget(fraction, "macs", dual_lr=args.dual_lr)
    model, info = _prox_select(dense, train, x_lat, args, budget, args.lam0, args.weights, keep,
                               test=test)
    rounded = copy.deepcopy(model) if args.round_multiple > 1 else None
    _finetune(model, train, args)
    name = f"prunekit proximal GL, MAC budget ({args.weights} weights)"
    row = _with_tp(rows, model, info, ref, dense, train, test, x_lat, args, name, level)
    if rounded is not None:
        cut = round_widths(rounded, x_lat, args.round_multiple)
        _finetune(rounded, train, args)
        _with_tp(rows, rounded, {**info, "rounded_removed": cut}, ref, dense, train, test,
                 x_lat, args, f"{name}, widths rounded down to ×{args.round_multiple}", level)
    if fraction in args.fixed_budgets:
        lam = args.lam_factor * (info["lam_at_budget"] or info["lam_final"])
        model, info = _prox_select(dense, train, x_lat, args, None, lam, args.weights, keep)
        _finetune(model, train, args)
        _with_tp(rows, model, info, ref, dense, train, test, x_lat, args,
                 f"prunekit proximal GL, fixed λ ({args.weights} weights)", level)
    return row


def latency_level(rows, ref, dense, train, test, x_lat, args, fraction: float) -> None:
    """A latency budget (predicted ms at the timing batch) with latency weights."""
    from prunekit.methods.cost import LatencyCost

    cost = LatencyCost.build(dense, x_lat[:1], threads=args.threads, batch_size=len(x_lat))
    level = f"latency {fraction:.3g}"
    try:
        budget = Budget(min(fraction, 1.0), "latency", dual_lr=args.dual_lr,
                        threads=args.threads, batch_size=len(x_lat))
        model, info = _prox_select(dense, train, x_lat, args, budget, args.lam0, "latency",
                                   args.latency_min_keep, cost)
    except ValueError as err:  # below the latency floor of the minimum widths
        console.log(f"[{level}] skipped: {err}")
        rows.append({"method": "prunekit proximal GL, latency budget", "level": level,
                     "skipped": str(err)})
        return
    info.update(latency_model_build_s=cost.build_seconds,
                latency_model_dense_ms=cost.cost())
    _finetune(model, train, args)
    _with_tp(rows, model, info, ref, dense, train, test, x_lat, args,
             "prunekit proximal GL, latency budget (latency weights)", level)


def _checkpoint(rows: list[dict], args) -> None:
    """Partial results after each pair (long runs on a busy machine)."""
    if args.smoke:
        return
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"training_vgg{_suffix(args)}_partial.json"
    path.write_text(json.dumps({"config": vars(args), "rows": rows}, indent=1, default=str))


# ---------------------------------------------------------------- driver
def _dense_key(args, n: int, epochs: int) -> str:
    w = "-".join(map(str, args.widths))
    return f"vggc_{w}_{args.hidden}_s{args.seed}_n{n}_e{epochs}_lr{args.lr:g}"


def _dense(train, args) -> nn.Module:
    """The dense model trained for ``--dense-epochs`` (loaded from the cache if there)."""
    torch.manual_seed(args.seed)
    model = vgg_cnn(args.widths, args.hidden)
    return tm.train_cached(model, _dense_key(args, len(train[1]), args.dense_epochs), train,
                           args)


def dense_curve(train, test, args) -> dict:
    """Dense test accuracy after every epoch up to ``--dense-epochs`` (is dense converged?).

    Each epoch's weights are also written to the dense cache under the key a run with that
    many ``--dense-epochs`` reads: :func:`fit` has a constant learning rate and seeds each
    epoch's permutation by ``(seed, epoch)``, so epoch ``k`` of a longer run is a ``k``-epoch
    run."""
    from prunekit.measure.machine import machine_info

    torch.manual_seed(args.seed)
    model = vgg_cnn(args.widths, args.hidden)
    steps = len(epoch_batches(len(train[1]), FitConfig().batch_size, args.seed, 0))
    curve: list[dict] = []

    def on_step(step: int, m: nn.Module) -> None:
        if step % steps:
            return
        epoch = step // steps
        curve.append({"epoch": epoch, "test_accuracy": evaluate(m, test),
                      "train_accuracy": evaluate(m, train)})
        console.log(f"dense epoch {epoch}: test {curve[-1]['test_accuracy']:.4f} "
                    f"train {curve[-1]['train_accuracy']:.4f}")
        if not args.smoke:
            args.dense_cache.mkdir(parents=True, exist_ok=True)
            torch.save(m.state_dict(),
                       args.dense_cache / f"{_dense_key(args, len(train[1]), epoch)}.pt")
            _write_curve({"config": vars(args), "curve": curve, "partial": True}, args)

    fit(model, train, FitConfig(epochs=args.dense_epochs, lr=args.lr, seed=args.seed,
                                progress=args.progress), on_step=on_step)
    return {"config": vars(args), "machine": machine_info(), "curve": curve}


def _write_curve(results: dict, args) -> Path:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"training_vgg_dense_curve{_suffix(args)}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    return out


def _run(args) -> dict:
    from prunekit.measure import count_macs
    from prunekit.measure.machine import machine_info

    t0 = time.time()
    train, test = tm.load_data(args)
    x_lat = test[0][:args.latency_batch]
    results = {"config": vars(args), "machine": machine_info()}
    console.log(results["config"])
    dense = _dense(train, args)
    if args.dense_only:
        return results
    dense.eval()
    ref = {"model": dense, "folded": fold_bn(dense), "macs": count_macs(dense, x_lat[:1])}
    rows = [measure_row(dense, ref, test, x_lat, args, method="dense", level="")]
    console.log(f"dense: acc {rows[0]['accuracy']:.4f}, {rows[0]['latency_ms']:.1f} ms")
    level_rows = [mac_level(rows, ref, dense, train, test, x_lat, args, f)
                  for f in args.budgets]
    if args.latency_budget is not None:
        fraction = args.latency_budget or _latency_fraction(level_rows)
        latency_level(rows, ref, dense, train, test, x_lat, args, fraction)
    results["rows"] = rows
    results["wall_s"] = time.time() - t0
    return results


def _latency_fraction(level_rows: list[dict]) -> float:
    """The latency ratio the tightest MAC budget run measured (same speed, other cuts)."""
    row = max(level_rows, key=lambda r: r["mac_reduction"])
    return row["latency_ms"] / row["latency_dense_ms"]


def _suffix(args) -> str:
    return ("_smoke" if args.smoke else "") + (f"_{args.tag}" if args.tag else "")


def add_profiles(results: dict, args) -> None:
    """Profile dense and every prunekit row from its widths (rebuilt: dense kernels do not
    depend on the weight values) and its Torch-Pruning twin."""
    x = torch.rand(args.latency_batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    dense = vgg_cnn(args.widths, args.hidden).eval()
    dense_prof = layer_profile(dense, x, args.repeats)
    prof = {"dense": dense_prof}
    for r in results["rows"][1:]:
        if "widths" not in r:
            continue
        w = r["widths"]
        model = vgg_cnn(tuple(w[:-2]), w[-2]).eval()
        p = layer_profile(model, x, args.repeats)
        twin = f" @ {r['matched_to']}" if r.get("matched_to") else ""
        prof[f"{r['level']} | {r['method']}{twin}"] = {
            "layers": p, "by_type": profile_summary(dense_prof, p)}
    results["profile"] = prof


def write(results: dict, args) -> Path:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"training_vgg{_suffix(args)}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    plot(results["rows"], args.img_dir / f"training_vgg{_suffix(args)}.png")
    plot_trajectory(results["rows"], args.img_dir / f"training_vgg{_suffix(args)}_trajectory.png")
    print_table(results["rows"])
    console.print(f"wrote {out}")
    return out


def plot(rows: list[dict], path: Path) -> None:
    series: dict[str, list[dict]] = {}
    for r in rows[1:]:
        if "accuracy" in r:
            key = (f"Torch-Pruning @ {r['matched_to'].removeprefix('prunekit ')}"
                   if r.get("matched_to") else r["method"])
            series.setdefault(key, []).append(r)
    tm.plot_accuracy_curves(series, rows[0]["accuracy"],
                            (("mac_reduction", "MAC reduction (theory)"),
                             ("speedup", "measured CPU speedup (batch 256, eager)"),
                             ("params", "parameters")),
                            "VGG-style CNN, Fashion-MNIST", path, figsize=(16, 4.5), x=_x)


def plot_trajectory(rows: list[dict], path: Path) -> None:
    """Budget-mode runs with a trace: λ and the zeros' cost / B against the proximal step,
    and the test accuracy of each epoch's selection (``--epoch-accuracy``; the last
    epoch is the row itself) with its Torch-Pruning twin at the same level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in rows if r.get("trajectory") and "budget_target" in r
            and "rounded" not in r["method"]]
    if not runs:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for r in runs:
        tr = r["trajectory"]
        label = f"{r['level']}, {r.get('weights', '?')} weights"
        axes[0].plot([p["step"] for p in tr], [p["lam"] for p in tr], label=label)
        axes[1].plot([p["step"] for p in tr], [p["zeros"] for p in tr], label=label)
        pts = [(p["epoch"], 100 * p["accuracy"]) for p in tr if "accuracy" in p]
        pts.append((r["prox_epochs"], 100 * r["accuracy"]))
        line = axes[2].plot(*zip(*pts), "o-", label=f"{label} prox GL")[0]
        tp = [t for t in rows if t.get("matched_to") == r["method"] and t["level"] == r["level"]]
        if tp:
            axes[2].axhline(100 * tp[0]["accuracy"], ls="--", c=line.get_color(),
                            label=f"{label} Torch-Pruning")
    axes[1].axhline(1.0, ls=":", c="gray")
    axes[0].set(yscale="log", xlabel="proximal step", ylabel="λ", title="dual ascent on λ")
    axes[1].set(yscale="log", xlabel="proximal step", ylabel="cost of the exact zeros / budget",
                title="zeros alone vs the budget (≤ 1: met)")
    axes[2].set(xlabel="proximal epochs before the cut", ylabel="test accuracy (%)",
                title="selection after k epochs, same fine-tuning")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _x(row: dict, key: str) -> float:
    """Plot coordinate; ``"speedup"`` is the re-timed eager one when there is one."""
    if key == "speedup":
        return row.get("retime", {}).get("eager", {}).get("speedup", row["measured_speedup"])
    return row[key]


def print_table(rows: list[dict]) -> None:
    t = Table(title="structured (VGG-style CNN)")
    for c in ("level", "method", "widths", "params", "MAC red.", "ms", "speedup", "ρ",
              "ρ folded", "accuracy"):
        t.add_column(c)
    for r in rows:
        if "accuracy" not in r:
            t.add_row(r["level"], r["method"], "skipped", "", "", "", "", "", "", "")
            continue
        t.add_row(r["level"], r["method"], str(r["widths"]), str(r["params"]),
                  f"{r['mac_reduction']:.2f}", f"{r['latency_ms']:.1f}",
                  f"{r['measured_speedup']:.2f}", f"{r['rho']:.2f}", f"{r['rho_folded']:.2f}",
                  f"{r['accuracy']:.4f}")
    console.print(t)


def _widths_arg(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--widths", type=_widths_arg, default=WIDTHS, help="conv widths, e.g. 32,32,64")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--train-size", type=int, default=6000)
    p.add_argument("--dense-epochs", type=int, default=4)
    p.add_argument("--prox-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--prox-lr", type=float, default=0.02)
    p.add_argument("--lam0", type=float, default=0.002)
    p.add_argument("--lam-factor", type=float, default=0.5)
    p.add_argument("--dual-lr", type=float, default=0.03)
    p.add_argument("--budgets", type=float, nargs="*", default=[0.125, 0.25])
    p.add_argument("--weights", default="macs")
    p.add_argument("--min-keep", type=tm._int_or_float, default=2)
    p.add_argument("--min-keep-rel", type=float, default=0.9,
                   help="if > 0: min width = this × the uniform width meeting the budget")
    p.add_argument("--fixed-budgets", type=float, nargs="*", default=[0.125],
                   help="budgets at which to also run a fixed λ (× the budget run's λ)")
    p.add_argument("--round-multiple", type=int, default=8,
                   help="also round the budget runs' widths down to this multiple (≤1: off)")
    p.add_argument("--latency-budget", type=float, default=0.0,
                   help="latency budget fraction; 0: the latency ratio measured at the "
                        "tightest MAC budget; omit the run with --no-latency")
    p.add_argument("--no-latency", dest="latency_budget", action="store_const", const=None)
    p.add_argument("--latency-min-keep", type=tm._int_or_float, default=0.2)
    p.add_argument("--trace-every", type=int, default=5,
                   help="record λ and the zeros' cost every this many proximal steps")
    p.add_argument("--epoch-accuracy", action="store_true",
                   help="also fine-tune and test each proximal epoch's selection")
    p.add_argument("--debias", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--latency-batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3, help="timed passes per round")
    p.add_argument("--rounds", type=int, default=3, help="alternating dense/pruned rounds")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--dense-only", action="store_true", help="train/cache the dense model only")
    p.add_argument("--dense-curve", action="store_true",
                   help="train dense for --dense-epochs, test accuracy after each epoch, "
                        "cache every epoch's weights; writes training_vgg_dense_curve.json")
    p.add_argument("--dense-cache", type=Path,
                   default=Path.home() / ".cache" / "prunekit" / "bench")
    p.add_argument("--finish", type=Path, nargs="+", default=None,
                   help="write JSON, profiles and plot from an interrupted run's partial JSON "
                        "(several: merged, e.g. one MAC level per process)")
    p.add_argument("--retime-modes", nargs="*", default=["eager", "bn_folded", "frozen"],
                   choices=sorted(DEPLOY), help="re-time every row from its widths in these "
                   "deployment modes (after the run)")
    p.add_argument("--tag", default="")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument("--img-dir", type=Path, default=IMG)
    args = p.parse_args(argv)
    if args.smoke:
        args.widths, args.hidden = tuple(max(2, w // 8) for w in args.widths), 16
        args.dense_epochs = args.prox_epochs = args.finetune_epochs = 1
        args.latency_batch, args.repeats, args.rounds = 16, 1, 1
        args.budgets = args.budgets[:1]
        args.fixed_budgets = args.budgets
        args.round_multiple = min(args.round_multiple, 2)
    return args


def freeze(model: nn.Module) -> nn.Module:
    """TorchScript-frozen and ``optimize_for_inference`` (oneDNN layout, BN folded, conv
    and ReLU fused, in-place activations): an inference graph with less elementwise
    overhead. TorchScript is deprecated upstream but present in torch 2.11-2.14."""
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(copy.deepcopy(model).eval())
        return torch.jit.optimize_for_inference(torch.jit.freeze(scripted))


DEPLOY = {"eager": lambda m: m.eval(), "bn_folded": fold_bn, "frozen": freeze}


def retime(results: dict, args) -> None:
    """Re-time every row from its widths (dense kernels do not depend on the weight
    values) against the dense model, in ``--retime-modes`` (eager, BN folded, frozen
    TorchScript): ``row["retime"][mode] = {dense_ms, ms, speedup, rho}``."""
    x = torch.rand(args.latency_batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    dense = vgg_cnn(args.widths, args.hidden).eval()
    deployed = {mode: DEPLOY[mode](dense) for mode in args.retime_modes}
    for r in results["rows"][1:]:
        if "widths" not in r:
            continue
        model = vgg_cnn(tuple(r["widths"][:-2]), r["widths"][-2]).eval()
        r["retime"] = {}
        for mode in args.retime_modes:
            dense_ms, ms = paired_ms(deployed[mode], DEPLOY[mode](model), x, args)
            r["retime"][mode] = {"dense_ms": dense_ms, "ms": ms, "speedup": dense_ms / ms,
                                 "rho": dense_ms / ms / r["mac_reduction"]}
        console.log(f"{r['level']} {r['method'][:50]}: " + ", ".join(
            f"{m} ρ {v['rho']:.2f}" for m, v in r["retime"].items()))
    results["retime_config"] = {"modes": args.retime_modes, "repeats": args.repeats,
                                "rounds": args.rounds, "batch": args.latency_batch}


def finish(paths: Path | list[Path], args) -> dict:
    """Results from the partial JSON of an interrupted run (the rows finished so far), or
    from a finished run's JSON (profiles and re-timing redone). Several paths (runs of the
    same dense model, e.g. one MAC level per process) are merged: the first file's dense
    row and config, then every other row in order; ``wall_s`` is summed."""
    from prunekit.measure.machine import machine_info

    paths = [Path(p) for p in (paths if isinstance(paths, list) else [paths])]
    parts = [json.loads(p.read_text()) for p in paths]
    rows = list(parts[0]["rows"])
    for part in parts[1:]:
        if part["rows"][0]["method"] != "dense" or part["rows"][0]["widths"] != rows[0]["widths"]:
            raise ValueError(f"--finish: {part['config'].get('tag')!r} has another dense model")
        rows += part["rows"][1:]
    walls = [part.get("wall_s") for part in parts]
    out = {"config": parts[0]["config"], "machine": machine_info(), "rows": rows,
           "wall_s": sum(walls) if None not in walls else None}
    if len(parts) > 1:
        out["merged_from"] = [p.name for p in paths]
        out["configs"] = [part["config"] for part in parts]
    partial = [p.name for p in paths if p.stem.endswith("_partial")]
    if partial:
        out["interrupted"] = (f"finished from {', '.join(partial)}: rows after the last "
                              "completed pair were not run")
    return out


def main(argv=None) -> dict:
    args = parse(argv)
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        if args.dense_curve:
            train, test = tm.load_data(args)
            results = dense_curve(train, test, args)
            console.print(f"wrote {_write_curve(results, args)}")
            return results
        results = finish(args.finish, args) if args.finish else _run(args)
        if "rows" in results:
            add_profiles(results, args)
            if args.retime_modes:
                retime(results, args)
            write(results, args)
        return results
    finally:
        torch.set_num_threads(before)


if __name__ == "__main__":
    main()
