"""Training-time pruning on Fashion-MNIST: prunekit.methods against the incumbents.

In one run, on the same data, epochs and seed (incumbents re-run here):

* LeNet-300-100, unstructured, a chain of compression levels (10×…100× fewer weights),
  each level followed by the same number of retraining epochs:
  ``torch.nn.utils.prune`` global magnitude (one-shot per level, CE fine-tuning) against
  prunekit gradual (cubic) magnitude within the level + distillation from the dense model.
* LeNet-300-100 lottery ticket at 5 % of the weights (rewind to init) vs random reinit.
* LeNet-5 (20-50-500-10), structured, at several MAC budgets (``--budgets``): proximal
  group lasso with MAC-proportional group weights and a minimum width, in budget mode and
  with a fixed λ, removal by surgery, fine-tuning; each against Torch-Pruning magnitude
  at the MACs it reached with the same fine-tuning; optionally a latency budget
  (``--latency-budgets``) and a ``sqrt``-weights ablation. Accuracy vs parameters, MACs
  and *measured* CPU latency (batch 256), ρ = measured speedup / MAC reduction.

Usage::

    nice -n 10 .venv/bin/python benchmarks/training_methods.py            # 1 thread
    .venv/bin/python benchmarks/training_methods.py --smoke               # seconds, synthetic
    # only the structured part -> training_methods_structured.json, training_structured.png
    nice -n 10 .venv/bin/python benchmarks/training_methods.py --structured-only
    # or in two parallel halves, then merged:
    ... training_methods.py --skip structured --tag a
    ... training_methods.py --skip unstructured lottery --tag b
    ... training_methods.py --merge benchmarks/results/training_methods_{a,b}.json

Writes ``benchmarks/results/training_methods[_smoke].json`` and ``docs/img/methods_*.png``.
The dense models are cached in ``--dense-cache`` (keyed by model, seed, data and epochs).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from prunekit.methods import (
    Budget,
    FitConfig,
    ProximalGroupLasso,
    ScheduledMagnitude,
    evaluate,
    fit,
    gradual,
    lottery_ticket,
    prunable_weights,
)
from prunekit.methods.retrain import RetrainConfig, prune_retrain

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
console = Console()


def lenet_300_100() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, 10))


def lenet5() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(),
                         nn.Linear(500, 10))


def vgg_small() -> nn.Module:
    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
    return nn.Sequential(*block(1, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64),
                         *block(64, 64), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 49, 256),
                         nn.ReLU(), nn.Linear(256, 10))


MODELS = {"lenet300": lenet_300_100, "lenet5": lenet5, "vgg_small": vgg_small}


# ---------------------------------------------------------------- data and measurement
def load_data(args):
    from prunekit.data import fashion_mnist_subset, synthetic_fashion

    if args.smoke:
        return synthetic_fashion(256, 128, seed=0)
    return fashion_mnist_subset(args.train_size, seed=args.seed)


def nonzero_weights(model: nn.Module) -> tuple[int, int]:
    """(nonzero, total) over Linear/Conv weights, masks applied (ours or torch's)."""
    nz = tot = 0
    for name in prunable_weights(model):
        mod = model.get_submodule(name.rsplit(".", 1)[0])
        w = mod.weight.detach()
        nz += int((w != 0).sum())
        tot += w.numel()
    return nz, tot


def measure(net, test, x_lat, args, **extra) -> dict:
    from prunekit.measure import count_macs, latency

    net.eval()
    nz, tot = nonzero_weights(net)
    stats = latency(net, x_lat, threads=args.threads, warmup=1 if args.smoke else 5,
                    repeats=args.repeats)
    return {"accuracy": evaluate(net, test), "nonzero_weights": nz, "weights": tot,
            "params": sum(p.numel() for p in net.parameters()),
            "macs": count_macs(net, x_lat[:1]), "latency_ms": stats.median_ms,
            "latency_iqr_ms": stats.iqr_ms, **extra}


# ---------------------------------------------------------------- unstructured
def _torch_prune_level(model, target, train, cfg, teacher):
    from torch.nn.utils import prune

    cfg = replace(cfg, distill_alpha=0.0)
    nz, tot = nonzero_weights(model)
    amount = 1.0 - (1.0 - target) * tot / nz  # torch's amount is relative to what remains
    targets = [(model.get_submodule(n.rsplit(".", 1)[0]), "weight")
               for n in prunable_weights(model)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured,
                              amount=max(amount, 0.0))
    fit(model, train, cfg)


def _gradual_distill_level(model, target, train, cfg, teacher):
    """The previous session's method: cubic ramp over the first half of the level, then
    distillation from the dense model (kept as a reference variant)."""
    nz, tot = nonzero_weights(model)
    current = 1.0 - nz / tot
    steps = cfg.epochs * (len(train[1]) // cfg.batch_size + 1)
    schedule = gradual(target, begin=0, end=max(steps // 2, 2), every=max(steps // 20, 1),
                       initial=current)
    fit(model, train, replace(cfg, distill_alpha=cfg.distill_alpha), teacher=teacher,
        on_step=ScheduledMagnitude(lambda s: schedule(s - 1) if s > 1 else current))
    ScheduledMagnitude(lambda s: target)(0, model)  # land exactly on the level


def _retrain_level(retrain: RetrainConfig, distill: bool = False):
    """A level by :func:`prunekit.methods.retrain.prune_retrain` with ``retrain``."""
    def level(model, target, train, cfg, teacher):
        cfg = cfg if distill else replace(cfg, distill_alpha=0.0)
        prune_retrain(model, train, target, cfg, retrain, teacher=teacher if distill else None)
    return level


BASELINE = "torch.nn.utils.prune global magnitude"
def _rc(scope: str, lr: str, ramp: float = 0.0, average: float = 0.0) -> RetrainConfig:
    """A RetrainConfig with every option spelled out (the variants do not follow defaults)."""
    return RetrainConfig(scope, lr, prune_fraction=ramp, average_fraction=average)


VARIANTS = {  # --variants: prunekit methods run against the baseline (same epochs per level)
    "cosine": ("prunekit global + LR rewinding (cosine)",
               _retrain_level(_rc("global", "cosine"))),
    "swa": ("prunekit global + weight averaging",
            _retrain_level(_rc("global", "constant", average=0.5))),
    "swa_ramp": ("prunekit global, cubic ramp over 30 % + weight averaging",
                 _retrain_level(_rc("global", "constant", ramp=0.3, average=0.5))),
    "swa_distill": ("prunekit global + weight averaging + distillation",
                    _retrain_level(_rc("global", "constant", average=0.5), distill=True)),
    "plain": ("prunekit global, constant LR (control)",
              _retrain_level(_rc("global", "constant"))),
    "lamp_cosine": ("prunekit LAMP + LR rewinding (cosine)",
                    _retrain_level(_rc("lamp", "cosine"))),
    "lamp_swa": ("prunekit LAMP + weight averaging",
                 _retrain_level(_rc("lamp", "constant", average=0.5))),
    "gradual_distill": ("prunekit gradual + distill (previous session)",
                        _gradual_distill_level),
}


def unstructured_methods(args) -> dict:
    """``{method label: level function}``: the baseline, then the chosen variants."""
    base = {} if args.no_baseline else {BASELINE: _torch_prune_level}
    return {**base, **dict(VARIANTS[v] for v in args.variants)}


def unstructured(dense, train, test, x_lat, args) -> list[dict]:
    cfg = FitConfig(epochs=args.retrain_epochs, lr=args.lr, seed=args.seed, progress=False,
                    distill_alpha=args.distill_alpha)  # only variants that distill use it
    ours = replace(cfg, lr=args.retrain_lr or args.lr)  # the baseline keeps --lr
    rows = []
    for method, level_fn in unstructured_methods(args).items():
        model, teacher = copy.deepcopy(dense), copy.deepcopy(dense).eval()
        if method != BASELINE:
            method += f", lr {ours.lr:g}"
        for factor in args.levels:
            torch.manual_seed(args.seed)
            level_fn(model, 1.0 - 1.0 / factor, train, cfg if method == BASELINE else ours,
                     teacher)
            rows.append(measure(model, test, x_lat, args, model="lenet300", method=method,
                                target_compression=factor))
            console.log(f"{method} {factor}x: acc {rows[-1]['accuracy']:.4f}")
    return rows


def lottery(train, test, args) -> dict:
    """IMP from the dense model's initialization; every training run (the dense one, each
    round, the random-reinit control) is ``--ticket-epochs`` long (default: the dense
    epochs), so ``dense_accuracy`` is the dense baseline under the same protocol."""
    torch.manual_seed(args.seed)
    model = lenet_300_100()
    epochs = args.ticket_epochs or args.dense_epochs
    cfg = FitConfig(epochs=epochs, lr=args.lr, seed=args.seed, progress=False)
    steps = -(-len(train[1]) // cfg.batch_size)
    rewind = round(args.rewind_epochs * steps)
    res = lottery_ticket(model, train, 1.0 - args.ticket_fraction, rounds=args.ticket_rounds,
                         config=cfg, rewind_step=rewind, test=test, scope=args.ticket_scope)
    for r in res.rounds:
        console.log(f"lottery round {r['round']}: {1 - r['sparsity']:.2%} of the weights, "
                    f"acc {r['accuracy']:.4f}")
    console.log(f"lottery: dense {res.dense_accuracy:.4f}, ticket {res.ticket_accuracy:.4f}, "
                f"reinit {res.reinit_accuracy:.4f}")
    return {"model": "lenet300", "fraction": args.ticket_fraction, "rounds": res.rounds,
            "epochs": epochs, "rewind_step": rewind, "rewind_epochs": args.rewind_epochs,
            "scope": args.ticket_scope, "dense_accuracy": res.dense_accuracy,
            "ticket_accuracy": res.ticket_accuracy, "reinit_accuracy": res.reinit_accuracy}


# ---------------------------------------------------------------- structured
def uniform_width(dense, x_lat, fraction: float) -> float:
    """Largest kept fraction ``u`` of every group whose MACs meet ``fraction`` of dense
    (what a uniform-ratio pruner such as Torch-Pruning's keeps), by bisection."""
    import math

    from prunekit.graph import build_groups

    model = copy.deepcopy(dense)
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.0), model,
                             build_groups(model, x_lat[:2]), lam=0.0, budget=Budget(1.0),
                             example_inputs=x_lat[:2])

    def cost(u):
        return opt.current_cost({g.id: list(range(g.size - max(1, math.ceil(u * g.size))))
                                 for g in opt.groups if g.size > 1})

    lo, hi = 0.0, 1.0
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cost(mid) <= fraction * opt.dense_cost else (lo, mid)
    return lo


def min_keep_for(dense, x_lat, args, fraction: float | None):
    """``--min-keep``, or ``--min-keep-rel`` × the uniform width of the budget."""
    if not args.min_keep_rel or fraction is None:
        return args.min_keep
    return round(args.min_keep_rel * uniform_width(dense, x_lat, fraction), 3)


def prox_select(dense, train, x_lat, args, budget: Budget | None, lam: float, weights: str,
                cost_model=None, min_keep=None, on_step=None):
    """Proximal GL from the dense weights (SGD + momentum, ``--prox-epochs``), finalized
    (with ``--debias`` the survivors restart from the dense weights), not fine-tuned.

    Returns ``(model, opt, info)``; ``on_step(step, model, opt)`` is called with step 0
    before training and after every optimizer step (the VGG benchmark traces the budget
    dynamics with it)."""
    from prunekit.graph import build_groups

    torch.manual_seed(args.seed)
    model = copy.deepcopy(dense)
    gs = build_groups(model, x_lat[:2])
    sgd = torch.optim.SGD(model.parameters(), lr=args.prox_lr, momentum=0.9)
    min_keep = args.min_keep if min_keep is None else min_keep
    opt = ProximalGroupLasso(sgd, model, gs, lam=lam, example_inputs=x_lat[:2], weights=weights,
                             budget=budget, min_keep=min_keep, cost_model=cost_model)
    hook = None
    if on_step is not None:
        on_step(0, model, opt)
        hook = lambda step, m: on_step(step, m, opt)  # noqa: E731
    t0 = time.process_time()
    fit(model, train, FitConfig(epochs=args.prox_epochs, seed=args.seed,
                                progress=args.progress), optimizer=opt, on_step=hook)
    info = {"lam": lam, "lam_final": opt.lam, "lam_at_budget": opt.state.lam_at_budget,
            "step_at_budget": opt.state.step_at_budget, "prox_steps": opt.state.step,
            "prox_lr": args.prox_lr, "prox_epochs": args.prox_epochs,
            "zero_events": len(opt.events), "weights": weights, "min_keep": min_keep,
            "prox_cpu_s": time.process_time() - t0}
    if budget is not None:
        target = budget.fraction * opt.dense_cost
        info.update(budget_kind=budget.kind, budget_target=target, dual_lr=budget.dual_lr,
                    budget_landed=opt.current_cost(opt.removal_plan()),
                    budget_zeros_only=opt.current_cost(opt.removal_plan(enforce_budget=False)))
        info["budget_error"] = info["budget_landed"] / target - 1
        info["zeros_met_budget"] = info["budget_zeros_only"] <= target
    opt.finalize(restore=dense.state_dict() if args.debias else None)
    info["widths"], info["debias"] = _widths(model), args.debias
    return model, opt, info


def proximal(dense, train, x_lat, args, budget: Budget | None, lam: float, weights: str,
             cost_model=None, min_keep=None):
    """Proximal GL from the dense weights (:func:`prox_select`), then fine-tune (Adam)."""
    t0 = time.process_time()
    model, _, info = prox_select(dense, train, x_lat, args, budget, lam, weights, cost_model,
                                 min_keep)
    fit(model, train, FitConfig(epochs=args.finetune_epochs, lr=args.lr, seed=args.seed,
                                progress=args.progress))
    info["train_cpu_s"] = time.process_time() - t0
    return model, info


def _widths(model: nn.Module) -> list[int]:
    return [m.weight.shape[0] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def torch_pruning_matched(dense, train, x_lat, args, target_macs: int):
    """Torch-Pruning magnitude (L2, uniform ratio) with the ratio bisected to match MACs."""
    import torch_pruning as tp

    from prunekit.measure import count_macs

    def pruned(ratio):
        m = copy.deepcopy(dense)
        pruner = tp.pruner.MagnitudePruner(m, x_lat[:1], tp.importance.MagnitudeImportance(p=2),
                                           pruning_ratio=ratio, ignored_layers=[m[-1]])
        pruner.step()
        return m

    lo, hi = 0.0, 0.99
    for _ in range(4 if args.smoke else 14):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count_macs(pruned(mid), x_lat[:1]) > target_macs else (lo, mid)
    model = pruned(hi)
    info = {"ratio": hi, "widths": _widths(model)}
    t0 = time.process_time()
    fit(model, train, FitConfig(epochs=args.finetune_epochs, lr=args.lr, seed=args.seed,
                                progress=args.progress))
    info["train_cpu_s"] = time.process_time() - t0
    return model, info


def _checkpoint_rows(rows: list[dict], args) -> None:
    """Partial results after each pair of runs (long runs on a busy machine)."""
    if args.smoke:
        return
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"training_methods_{args.tag or 'run'}_partial.json"
    path.write_text(json.dumps({"config": vars(args), "structured": rows}, indent=1,
                               default=str))


def _pair(rows, name, dense, train, test, x_lat, args, method, budget, lam, weights,
          level, cost_model=None, min_keep=None):
    """One proximal run, then Torch-Pruning at the MACs it reached (same fine-tuning)."""
    torch.manual_seed(args.seed)
    model, info = proximal(dense, train, x_lat, args, budget, lam, weights, cost_model,
                           min_keep)
    method += f", min width {info['min_keep']}" + (", debiased" if args.debias else "")
    row = measure(model, test, x_lat, args, model=name, method=method, level=level, **info)
    rows.append(row)
    console.log(f"[{level}] {method}: acc {row['accuracy']:.4f} MACs {row['macs']} "
                f"widths {info['widths']} λ {lam:.4g}")
    torch.manual_seed(args.seed)
    tpm, tinfo = torch_pruning_matched(dense, train, x_lat, args, row["macs"])
    rows.append(measure(tpm, test, x_lat, args, model=name, matched_to=method, level=level,
                        method="Torch-Pruning magnitude (matched MACs)", **tinfo))
    console.log(f"[{level}] Torch-Pruning matched: acc {rows[-1]['accuracy']:.4f} "
                f"widths {tinfo['widths']}")
    _checkpoint_rows(rows, args)
    return row


def structured(name, dense, train, test, x_lat, args) -> list[dict]:
    """At each MAC budget: proximal GL in budget mode, proximal GL with a fixed λ (a
    fraction of the λ at which budget mode met its budget), each followed by Torch-Pruning
    at the MACs it reached; optionally a latency budget and a ``sqrt``-weights ablation."""
    rows = [measure(dense, test, x_lat, args, model=name, method="dense")]
    for fraction in args.budgets:
        level = f"{1 / fraction:g}x MACs"
        budget = Budget(fraction, "macs", dual_lr=args.dual_lr)
        keep = min_keep_for(dense, x_lat, args, fraction)
        row = _pair(rows, name, dense, train, test, x_lat, args,
                    f"prunekit proximal GL, MAC budget ({args.weights} weights)", budget,
                    args.lam0, args.weights, level, min_keep=keep)
        if not args.no_fixed:
            lam = args.lam_factor * (row["lam_at_budget"] or row["lam_final"])
            _pair(rows, name, dense, train, test, x_lat, args,
                  f"prunekit proximal GL, fixed λ ({args.weights} weights)", None, lam,
                  args.weights, level, min_keep=keep)
        if fraction in args.ablate_sqrt:
            _pair(rows, name, dense, train, test, x_lat, args,
                  "prunekit proximal GL, MAC budget (sqrt weights, ablation)", budget,
                  args.lam0, "sqrt", level)
    for fraction in args.latency_budgets:
        _latency_pair(rows, name, dense, train, test, x_lat, args, fraction)
    base = rows[0]
    for r in rows:
        r["mac_reduction"] = base["macs"] / r["macs"]
        r["measured_speedup"] = base["latency_ms"] / r["latency_ms"]
        r["rho"] = r["measured_speedup"] / r["mac_reduction"]
    return rows


def _latency_pair(rows, name, dense, train, test, x_lat, args, fraction):
    """A latency budget (predicted ms at the timing batch), then Torch-Pruning matched."""
    from prunekit.methods.cost import LatencyCost

    cost = LatencyCost.build(dense, x_lat[:1], threads=args.threads, batch_size=len(x_lat))
    again = LatencyCost.build(dense, x_lat[:1], threads=args.threads, batch_size=len(x_lat),
                              use_cache=False)
    budget = Budget(fraction, "latency", dual_lr=args.dual_lr, threads=args.threads,
                    batch_size=len(x_lat))
    row = _pair(rows, name, dense, train, test, x_lat, args,
                "prunekit proximal GL, latency budget (latency weights)", budget,
                args.lam0, "latency", f"latency {fraction:g}", cost)
    row.update(latency_model_build_s=cost.build_seconds, latency_model_timed=cost.timed,
               latency_model_dense_ms=cost.cost(),
               latency_model_rebuild_dense_ms=again.cost(),
               latency_model_predicted_ms=cost.cost(_removed_by_widths(cost, row["widths"])),
               latency_model_rebuild_predicted_ms=again.cost(
                   _removed_by_widths(again, row["widths"])))


def _removed_by_widths(cost, widths: list[int]) -> dict:
    """``removed`` counts for the LatencyCost from the pruned model's output widths."""
    layers = cost.model.layers
    removed = {}
    for i, (la, w) in enumerate(zip(layers, widths)):
        removed[(la.weight, 0)] = la.n_out - w
        if i + 1 < len(layers):
            nxt = layers[i + 1]
            per = nxt.n_in // la.n_out if nxt.kind == "linear" else 1
            removed[(nxt.weight, 1)] = (la.n_out - w) * per
    return removed


# ---------------------------------------------------------------- output
def plot(results, suffix, img_dir):
    """The unstructured, lottery and structured plots of whichever parts ran."""
    img_dir.mkdir(parents=True, exist_ok=True)
    if results["unstructured"]:
        plot_unstructured(results, img_dir / f"methods_unstructured{suffix}.png")
    if results.get("lottery"):
        plot_lottery(results["lottery"], img_dir / f"methods_lottery{suffix}.png")
    if results["structured"]:
        name = "methods_structured" if results["unstructured"] else "training"
        plot_structured(results, img_dir / f"{name}{suffix}.png")


def plot_unstructured(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    dense_acc = results["dense"]["lenet300"]["accuracy"]
    for method in dict.fromkeys(r["method"] for r in results["unstructured"]):
        pts = [r for r in results["unstructured"] if r["method"] == method]
        ax.plot([r["weights"] / max(r["nonzero_weights"], 1) for r in pts],
                [100 * r["accuracy"] for r in pts], "s--" if method == BASELINE else "o-",
                label=method)
    ax.axhline(100 * dense_acc, ls="--", c="gray", label="dense")
    ax.axhline(100 * dense_acc - 0.5, ls=":", c="gray", label="dense − 0.5 pt")
    ax.set(xscale="log", xlabel="compression (weights / nonzero)", ylabel="test accuracy (%)",
           title="LeNet-300-100, Fashion-MNIST")
    ax.set_xticks([10, 20, 30, 50, 100], ["10", "20", "30", "50", "100"])
    ax.minorticks_off()
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_lottery(lt, path):
    """Ticket accuracy per IMP round against the weights left, with the dense model and
    the random-reinit control of the final mask."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    left = [100 * (1 - r["sparsity"]) for r in lt["rounds"]]
    ax.plot(left, [100 * r["accuracy"] for r in lt["rounds"]], "o-",
            label=f"ticket (rewind to step {lt.get('rewind_step', 0)})")
    if lt.get("reinit_accuracy") is not None:
        ax.plot([left[-1]], [100 * lt["reinit_accuracy"]], "rx", ms=9,
                label="random reinit, same mask")
    if lt.get("dense_accuracy") is not None:
        ax.axhline(100 * lt["dense_accuracy"], ls="--", c="gray", label="dense")
    ax.set(xscale="log", xlabel="weights left (%)", ylabel="test accuracy (%)",
           title="Lottery ticket, LeNet-300-100, Fashion-MNIST")
    ticks = [t for t in (100, 50, 20, 10, 5, 2, 1) if min(left) <= t <= max(left) * 1.01]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _series(rows):
    """Structured rows grouped into plot series: each prunekit method, and Torch-Pruning
    matched to it."""
    import re

    out: dict[str, list[dict]] = {}
    for r in rows[1:]:
        key = (f"Torch-Pruning @ {r['matched_to'].removeprefix('prunekit ')}"
               if r.get("matched_to") else r["method"])
        if "latency" not in key:  # MAC levels: the min width follows the budget
            key = re.sub(r"min width 0\.\d+", "min width ∝ budget", key)
        out.setdefault(key, []).append(r)
    return out


def plot_structured(results, path):
    rows = results["structured"]
    plot_accuracy_curves(_series(rows), rows[0]["accuracy"],
                         (("mac_reduction", "MAC reduction (theory)"),
                          ("measured_speedup", "measured CPU speedup (batch 256)")),
                         "LeNet-5, Fashion-MNIST", path, figsize=(12, 4.5))


def plot_accuracy_curves(series, dense_accuracy, panels, title, path, figsize,
                         x=lambda row, key: row[key]):
    """One panel per ``(key, xlabel)`` of ``panels``: test accuracy against ``x(row, key)``
    (log axis), one line per entry of ``series`` (Torch-Pruning dashed), the dense accuracy
    dotted; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=figsize)
    for (key, xlabel), ax in zip(panels, axes):
        for label, pts in series.items():
            pts = sorted(pts, key=lambda r: x(r, key))
            ax.plot([x(r, key) for r in pts], [100 * r["accuracy"] for r in pts],
                    "s--" if label.startswith("Torch") else "o-", label=label)
        ax.axhline(100 * dense_accuracy, ls=":", c="gray", label="dense")
        ax.set(xscale="log", xlabel=xlabel, ylabel="test accuracy (%)", title=title)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_tables(results):
    t = Table(title="unstructured (LeNet-300-100)")
    for c in ("method", "target", "compression", "accuracy"):
        t.add_column(c)
    for r in results["unstructured"]:
        t.add_row(r["method"], f"{r['target_compression']}x",
                  f"{r['weights'] / max(r['nonzero_weights'], 1):.1f}x", f"{r['accuracy']:.4f}")
    console.print(t)
    t = Table(title="structured (LeNet-5)")
    for c in ("level", "method", "widths", "params", "MACs", "MAC red.", "latency ms",
              "speedup", "ρ", "accuracy"):
        t.add_column(c)
    for r in results["structured"]:
        t.add_row(r.get("level", ""), r["method"], str(r.get("widths", "")), str(r["params"]),
                  str(r["macs"]), f"{r['mac_reduction']:.2f}", f"{r['latency_ms']:.2f}",
                  f"{r['measured_speedup']:.2f}", f"{r['rho']:.2f}", f"{r['accuracy']:.4f}")
    console.print(t)
    lt = results.get("lottery")
    if lt:
        console.print(f"lottery at {lt['fraction']:.0%} weights: ticket "
                      f"{lt['ticket_accuracy']:.4f}, random reinit {lt['reinit_accuracy']:.4f}")


def _int_or_float(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train-size", type=int, default=15000)
    p.add_argument("--dense-epochs", type=int, default=10)
    p.add_argument("--retrain-epochs", type=int, default=3,
                   help="retraining epochs after each unstructured level (issue 9: 3)")
    p.add_argument("--prox-epochs", type=int, default=3)
    p.add_argument("--finetune-epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--distill-alpha", type=float, default=0.5)
    p.add_argument("--prox-lr", type=float, default=0.02)
    p.add_argument("--lam", type=float, default=None,
                   help="fixed λ (default: --lam-factor × λ when the budget run met its budget)")
    p.add_argument("--lam-factor", type=float, default=0.5)
    p.add_argument("--lam0", type=float, default=0.002)
    p.add_argument("--dual-lr", type=float, default=0.01)
    p.add_argument("--budgets", type=float, nargs="*", default=[0.125, 0.25, 0.0625],
                   help="MAC budgets (fractions of dense) for the structured runs")
    p.add_argument("--weights", default="macs", help="group weights of the proximal runs")
    p.add_argument("--min-keep", type=_int_or_float, default=2,
                   help="minimum width of every group (int, or a fraction of its size)")
    p.add_argument("--min-keep-rel", type=float, default=0.0,
                   help="if > 0: min width = this × the uniform width meeting the budget")
    p.add_argument("--no-fixed", action="store_true", help="skip the fixed-λ runs")
    p.add_argument("--ablate-sqrt", type=float, nargs="*", default=[],
                   help="budgets at which to also run sqrt weights (ablation)")
    p.add_argument("--latency-budgets", type=float, nargs="*", default=[],
                   help="latency budgets (fractions of dense predicted ms)")
    p.add_argument("--structured-only", action="store_true",
                   help="only the structured section -> training_methods_structured.json")
    p.add_argument("--progress", action="store_true", help="progress bars while training")
    p.add_argument("--debias", action=argparse.BooleanOptionalAction, default=True,
                   help="survivors restart from the dense weights after the prox chose them")
    p.add_argument("--dense-cache", type=Path, default=Path.home() / ".cache" / "prunekit"
                   / "bench", help="directory caching the trained dense models")
    p.add_argument("--levels", type=float, nargs="+", default=[10, 20, 30, 50, 100])
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the torch baseline (a part run in parallel, then --merge)")
    p.add_argument("--retrain-lr", type=float, default=2e-3,
                   help="learning rate of the prunekit variants' retraining (0: --lr)")
    p.add_argument("--variants", nargs="*", default=["swa_ramp"], choices=list(VARIANTS),
                   help="prunekit unstructured methods run against the torch baseline")
    p.add_argument("--ticket-fraction", type=float, default=0.05)
    p.add_argument("--ticket-rounds", type=int, default=13,
                   help="IMP rounds (13 rounds to 5 %%: 20.6 %% of the survivors per round)")
    p.add_argument("--ticket-epochs", type=int, default=0,
                   help="epochs of every lottery training run (0: --dense-epochs)")
    p.add_argument("--rewind-epochs", type=float, default=0.5,
                   help="late rewinding: survivors restart from this point of the first run")
    p.add_argument("--ticket-scope", default="global", choices=["global", "layer", "lamp"])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--tag", default="", help="suffix of the output files")
    p.add_argument("--merge", nargs="+", type=Path, default=None,
                   help="merge these result JSON files (runs with complementary --skip)")
    p.add_argument("--retime", type=Path, default=None,
                   help="re-measure the latency of a structured result JSON from its widths")
    p.add_argument("--retime-rounds", type=int, default=3)
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument("--img-dir", type=Path, default=IMG)
    p.add_argument("--skip", nargs="*", default=[], choices=["unstructured", "lottery",
                                                             "structured"])
    args = p.parse_args(argv)
    if args.smoke:
        args.dense_epochs = args.retrain_epochs = args.prox_epochs = args.finetune_epochs = 1
        args.levels, args.ticket_rounds, args.repeats = [10, 20], 1, 3
        args.budgets = args.budgets[:2]
    if args.structured_only:
        args.skip = ["unstructured", "lottery"]
        args.tag = args.tag or "structured"
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    if args.merge:
        return merge(args.merge, args)
    if args.retime:
        torch.set_num_threads(args.threads)
        return retime(args.retime, args)
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(before)


def _run(args) -> dict:
    from prunekit.measure.machine import machine_info

    t0 = time.time()
    train, test = load_data(args)
    x_lat = test[0][:16 if args.smoke else 256]
    results = {"config": vars(args), "machine": machine_info(), "dense": {}}
    console.log(results["config"])
    dense = {}
    needed = (["lenet300"] if {"unstructured", "lottery"} - set(args.skip) else []) + (
        ["lenet5"] if "structured" not in args.skip else [])
    for name in needed:
        dense[name] = _dense(name, train, args)
        results["dense"][name] = measure(dense[name], test, x_lat, args, model=name,
                                         method="dense")
        console.log(f"dense {name}: {results['dense'][name]['accuracy']:.4f}")
    results["unstructured"] = ([] if "unstructured" in args.skip
                               else unstructured(dense["lenet300"], train, test, x_lat, args))
    results["lottery"] = None if "lottery" in args.skip else lottery(train, test, args)
    results["structured"] = ([] if "structured" in args.skip
                             else structured("lenet5", dense["lenet5"], train, test, x_lat, args))
    results["wall_s"] = time.time() - t0
    return _write(results, args)


def _dense(name: str, train, args) -> nn.Module:
    """The dense model trained for ``--dense-epochs`` (loaded from the cache if there)."""
    torch.manual_seed(args.seed)
    key = f"{name}_s{args.seed}_n{len(train[1])}_e{args.dense_epochs}_lr{args.lr:g}"
    return train_cached(MODELS[name](), key, train, args)


def train_cached(model: nn.Module, key: str, train, args) -> nn.Module:
    """``model`` trained for ``--dense-epochs`` at ``--lr`` (seeded), or loaded from
    ``--dense-cache/<key>.pt`` when a run already trained it (never in ``--smoke``)."""
    path = args.dense_cache / f"{key}.pt"
    if not args.smoke and path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        console.log(f"dense {key} loaded from {path}")
        return model
    fit(model, train, FitConfig(epochs=args.dense_epochs, lr=args.lr, seed=args.seed,
                                progress=args.progress))
    if not args.smoke:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model


def _write(results: dict, args) -> dict:
    suffix = ("_smoke" if args.smoke else "") + (f"_{args.tag}" if args.tag else "")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"training_methods{suffix}.json"
    out.write_text(json.dumps(results, indent=1, default=str))
    plot(results, suffix, args.img_dir)
    print_tables(results)
    console.print(f"wrote {out}")
    return results


def lenet5_at(widths: list[int]) -> nn.Module:
    """LeNet-5 with output widths ``[conv1, conv2, fc1, 10]`` (random weights)."""
    c1, c2, f, out = widths
    return nn.Sequential(nn.Conv2d(1, c1, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 16, f),
                         nn.ReLU(), nn.Linear(f, out))


def retime(path: Path, args) -> dict:
    """Re-measure the structured rows' CPU latency after the run, from their widths.

    Dense kernels do not depend on the weight values, so a LeNet-5 rebuilt at a row's widths
    times like the pruned model. Each row is timed against the dense model in alternating
    rounds (``paired_latency``: a noisy neighbour slows both sides alike), keeping the
    fastest of ``--repeats`` forward passes per round (load only adds time). The in-run
    timings stay in the JSON as ``latency_ms_in_run``.
    """
    from prunekit.hardware import DeviceSpec
    from prunekit.hardware.timing import paired_latency, place_inputs, place_module, time_placed

    results = json.loads(Path(path).read_text())
    spec = DeviceSpec("cpu", threads=args.threads)
    x = place_inputs(torch.rand(256, 1, 28, 28, generator=torch.Generator().manual_seed(0)),
                     spec)

    def fn(model):
        return time_placed(place_module(model.eval(), spec), x, spec, 2, args.repeats,
                           stat="min_ms")

    dense = lenet5()
    for r in results["structured"]:
        widths = r.get("widths") or [20, 50, 500, 10]
        dense_ms, ms = paired_latency(dense, lenet5_at(widths), fn, args.retime_rounds)
        r.setdefault("latency_ms_in_run", r["latency_ms"])
        r.update(latency_ms=ms, latency_dense_ms=dense_ms, measured_speedup=dense_ms / ms,
                 latency_method=f"retimed from widths: min of {args.repeats}, "
                                f"{args.retime_rounds} alternating rounds vs dense")
        r["rho"] = r["measured_speedup"] / r["mac_reduction"]
        console.log(f"{r.get('level', '')} {r['method'][:40]}: {ms:.2f} ms, "
                    f"speedup {r['measured_speedup']:.2f}, ρ {r['rho']:.2f}")
    Path(path).write_text(json.dumps(results, indent=1, default=str))
    plot_structured(results, args.img_dir / f"training_{Path(path).stem.split('_', 2)[-1]}.png")
    print_tables({**results, "unstructured": [], "lottery": None})
    return results


def merge(paths: list[Path], args) -> dict:
    """Combine the JSON of runs made with complementary ``--skip`` (run in parallel)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    merged = {"config": [p["config"] for p in parts], "machine": parts[0]["machine"],
              "dense": {}, "unstructured": [], "lottery": None, "structured": [],
              "wall_s": max(p["wall_s"] for p in parts)}
    for i, p in enumerate(parts):
        merged["dense"].update(p["dense"])
        merged["unstructured"] += p["unstructured"]
        # one dense row; every part keeps its speedups against its own dense timing
        merged["structured"] += [dict(r, part=i) for r in p["structured"]
                                 if r["method"] != "dense" or not merged["structured"]]
        merged["lottery"] = merged["lottery"] or p["lottery"]
    return _write(merged, args)


if __name__ == "__main__":
    main()
