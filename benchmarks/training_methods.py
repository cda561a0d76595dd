"""Training-time pruning on Fashion-MNIST: prunekit.methods against the incumbents, fairly.

One part per command (``--part``), one seed per command (``--seed``), one result file each
(``training_methods_<part>_s<seed>.json``); over seeds, ``structured_seeds.py`` pairs the
runs and says "ahead", "tie" or "behind" (≥ 5 seeds). Every part trains on the training
images minus a validation split carved from them, selects only on that split, and reads
the 10k test set once per reported number.

* ``unstructured`` — LeNet-300-100, a chain of compression levels (10×…100× fewer
  weights), each followed by ``--retrain-epochs`` of retraining: ``torch.nn.utils.prune``
  global magnitude (one-shot per level) against the prunekit recipe(s) of ``--variants``.
  Same epochs per level for every method, and the **same learning-rate grid**
  (``--lr-grid``): each method's lr is chosen per level on validation accuracy.
* ``lottery`` — LeNet-300-100 lottery ticket at ``--ticket-fraction`` of the weights
  (late rewinding) vs the random re-initialization of the same mask vs dense, every
  training run equally long. Nothing is selected: the per-round curve is reported as is.
* ``structured`` — LeNet-5 (20-50-500-10) at several MAC budgets (``--budgets``): prunekit
  proximal group lasso in budget mode (``--prox-epochs`` proximal + ``--finetune-epochs``
  fine-tuning) against Torch-Pruning (configured as its docs say: group L2 magnitude,
  the output layer ignored) at the same MACs **with the same total epochs**
  (prox + fine-tune, all spent fine-tuning). MACs match within 1 %, or — when no
  Torch-Pruning ratio lands that close — its accuracy is interpolated between the two
  nearest runs (both trained alike). Hyper-parameter grids (``--gl-grid``,
  ``--tp-grid``) must have equal sizes and are chosen on validation. Latency: batch 256,
  paired ABBA rounds against dense, medians with spread.

Usage::

    nice -n 10 python benchmarks/training_methods.py --part structured --seed 0
    nice -n 10 python benchmarks/training_methods.py --part unstructured --seed 0
    nice -n 10 python benchmarks/training_methods.py --part lottery --seed 0
    python benchmarks/training_methods.py --part structured --smoke     # seconds

The dense models are cached in ``--dense-cache`` (keyed by model, seed, data and epochs).
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import incumbents, plots, tables, timing  # noqa: E402
from benchmarks.harness.rules import Comparison, Method, RuleViolation  # noqa: E402
from prunekit.methods import (  # noqa: E402
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
from prunekit.methods.retrain import RetrainConfig, prune_retrain  # noqa: E402

console = Console()
PARTS = ("unstructured", "lottery", "structured")
GL = "prunekit proximal GL, MAC budget"
TP = "Torch-Pruning magnitude"


# ---------------------------------------------------------------- models
def lenet_300_100() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, 10))


def lenet5() -> nn.Module:
    return lenet5_at([20, 50, 500, 10])


def lenet5_at(widths: list[int]) -> nn.Module:
    """LeNet-5 with output widths ``[conv1, conv2, fc1, 10]`` (random weights)."""
    c1, c2, f, out = widths
    return nn.Sequential(nn.Conv2d(1, c1, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(c1, c2, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(c2 * 16, f),
                         nn.ReLU(), nn.Linear(f, out))


MODELS = {"lenet300": lenet_300_100, "lenet5": lenet5}


def _widths(model: nn.Module) -> list[int]:
    return [m.weight.shape[0] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


# ---------------------------------------------------------------- measurement
def nonzero_weights(model: nn.Module) -> tuple[int, int]:
    """(nonzero, total) over Linear/Conv weights, masks applied (ours or torch's)."""
    nz = tot = 0
    for name in prunable_weights(model):
        w = model.get_submodule(name.rsplit(".", 1)[0]).weight.detach()
        nz += int((w != 0).sum())
        tot += w.numel()
    return nz, tot


def measure(net: nn.Module, data: harness.Splits, claim: str, args, dense=None,
            **extra) -> dict:
    """Test accuracy (the one read for ``claim``), sizes, MACs and — with ``dense`` —
    paired latency against it (batch ``--latency-batch``)."""
    from prunekit.measure import count_macs

    net.eval()
    x = data.val[0][: args.latency_batch]
    nz, tot = nonzero_weights(net)
    row = {"accuracy": data.evaluate(claim, lambda t: evaluate(net, t)), "claim": claim,
           "nonzero_weights": nz, "weights": tot,
           "params": sum(p.numel() for p in net.parameters()), "macs": count_macs(net, x[:1]),
           **extra}
    if dense is not None:
        timed = timing.paired({"dense": dense, "model": net}, x, rounds=args.rounds,
                              repeats=args.repeats, warmup=2, threads=args.threads)
        sp = timed.speedup("dense", "model")
        row.update(latency_ms=timed.median_ms("model"), latency_dense_ms=timed.median_ms("dense"),
                   measured_speedup=sp["speedup"], speedup_range=[sp["min"], sp["max"]],
                   timing=timed.to_dict())
    return row


# ---------------------------------------------------------------- dense
def dense_model(name: str, data: harness.Splits, args) -> nn.Module:
    """``name`` trained on the training split for ``--dense-epochs`` (cached)."""
    harness.seed_all(args.seed)
    key = (f"{name}_s{args.seed}_n{len(data.train[1])}_val{len(data.val[1])}"
           f"_e{args.dense_epochs}_lr{args.lr:g}")
    return train_cached(MODELS[name](), key, data.train, args)


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


# ---------------------------------------------------------------- unstructured
def _torch_prune_level(model, target, train, cfg):
    from torch.nn.utils import prune

    nz, tot = nonzero_weights(model)
    amount = 1.0 - (1.0 - target) * tot / nz  # torch's amount is relative to what remains
    targets = [(model.get_submodule(n.rsplit(".", 1)[0]), "weight")
               for n in prunable_weights(model)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured,
                              amount=max(amount, 0.0))
    fit(model, train, cfg)


def _gradual_level(model, target, train, cfg):
    """Cubic ramp over the first half of the level, then plain retraining."""
    nz, tot = nonzero_weights(model)
    current = 1.0 - nz / tot
    steps = cfg.epochs * (len(train[1]) // cfg.batch_size + 1)
    schedule = gradual(target, begin=0, end=max(steps // 2, 2), every=max(steps // 20, 1),
                       initial=current)
    fit(model, train, cfg,
        on_step=ScheduledMagnitude(lambda s: schedule(s - 1) if s > 1 else current))
    ScheduledMagnitude(lambda s: target)(0, model)  # land exactly on the level


def _retrain_level(retrain: RetrainConfig):
    def level(model, target, train, cfg):
        prune_retrain(model, train, target, cfg, retrain)
    return level


def _rc(scope: str, lr: str, ramp: float = 0.0, average: float = 0.0) -> RetrainConfig:
    """A RetrainConfig with every option spelled out (the variants do not follow defaults)."""
    return RetrainConfig(scope, lr, prune_fraction=ramp, average_fraction=average)


BASELINE = "torch.nn.utils.prune global magnitude"
VARIANTS = {  # --variants: prunekit methods run against the baseline (same epochs per level)
    "cosine": ("prunekit global + LR rewinding (cosine)", _retrain_level(_rc("global", "cosine"))),
    "swa": ("prunekit global + weight averaging",
            _retrain_level(_rc("global", "constant", average=0.5))),
    "swa_ramp": ("prunekit global, cubic ramp over 30 % + weight averaging",
                 _retrain_level(_rc("global", "constant", ramp=0.3, average=0.5))),
    "plain": ("prunekit global, constant LR (control)", _retrain_level(_rc("global", "constant"))),
    "lamp_swa": ("prunekit LAMP + weight averaging",
                 _retrain_level(_rc("lamp", "constant", average=0.5))),
    "gradual": ("prunekit gradual (cubic) magnitude", _gradual_level),
}


def unstructured(dense: nn.Module, data: harness.Splits, args) -> tuple[list[dict], list]:
    """Every method × lr of the shared grid runs the whole chain; per level each method's
    lr is chosen on validation accuracy and only that model is scored on test."""
    methods = {BASELINE: _torch_prune_level, **dict(VARIANTS[v] for v in args.variants)}
    budget = args.retrain_epochs * len(args.levels)
    grid = {"lr": list(args.lr_grid)}
    cmps = {f: Comparison(f"LeNet-300-100 {f:g}x", [
        Method(m, budget, grid, incumbent=m == BASELINE) for m in methods], "epochs")
        for f in args.levels}
    rows = []
    for method, level_fn in methods.items():
        runs = {lr: _chain(dense, level_fn, data, lr, args) for lr in args.lr_grid}
        for i, factor in enumerate(args.levels):
            cmp = cmps[factor]
            choice = cmp.select(method, [({"lr": lr}, runs[lr][i]["val"]) for lr in runs])
            cmp.spend(method, budget)
            model = runs[choice.values["lr"]][i]["model"]
            rows.append(measure(model, data, f"{factor:g}x {method}", args, model="lenet300",
                                method=method, target_compression=factor,
                                lr=choice.values["lr"], val_accuracy=choice.score,
                                selection=choice.to_dict()))
            console.log(f"{method} {factor}x: lr {choice.values['lr']:g} "
                        f"val {choice.score:.4f} test {rows[-1]['accuracy']:.4f}")
    for cmp in cmps.values():
        cmp.check_spent()
    return rows, list(cmps.values())


def _chain(dense, level_fn, data, lr, args) -> list[dict]:
    """One method's chain of levels at one lr: per level a model copy and its val accuracy."""
    cfg = FitConfig(epochs=args.retrain_epochs, lr=lr, seed=args.seed, progress=False)
    model, out = copy.deepcopy(dense), []
    for factor in args.levels:
        harness.seed_all(args.seed)
        level_fn(model, 1.0 - 1.0 / factor, data.train, cfg)
        out.append({"model": baked(model), "val": evaluate(model, data.val)})
    return out


@torch.no_grad()
def baked(model: nn.Module) -> nn.Module:
    """A plain LeNet-300-100 holding ``model``'s effective (masked) weights: a snapshot
    that deep-copies, whichever masking (torch's or ours) the model carries."""
    fresh = lenet_300_100().eval()
    src = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for dst, mod in zip([m for m in fresh.modules() if isinstance(m, nn.Linear)], src,
                        strict=True):
        dst.weight.copy_(mod.weight.detach())
        dst.bias.copy_(mod.bias.detach())
    return fresh


# ---------------------------------------------------------------- lottery
def lottery(data: harness.Splits, args) -> dict:
    """IMP from the dense model's initialization; every training run (the dense one, each
    round, the random-reinit control) is ``--ticket-epochs`` long. Nothing is selected on
    the curve, so it is read on the test set as one reported curve."""
    harness.seed_all(args.seed)
    model = lenet_300_100()
    epochs = args.ticket_epochs or args.dense_epochs
    cfg = FitConfig(epochs=epochs, lr=args.lr, seed=args.seed, progress=False)
    steps = -(-len(data.train[1]) // cfg.batch_size)
    rewind = round(args.rewind_epochs * steps)
    test = data.test("lottery curve: dense, every IMP round, random re-init")
    res = lottery_ticket(model, data.train, 1.0 - args.ticket_fraction,
                         rounds=args.ticket_rounds, config=cfg, rewind_step=rewind, test=test,
                         scope=args.ticket_scope)
    console.log(f"lottery: dense {res.dense_accuracy:.4f}, ticket {res.ticket_accuracy:.4f}, "
                f"reinit {res.reinit_accuracy:.4f}")
    return {"model": "lenet300", "fraction": args.ticket_fraction, "rounds": res.rounds,
            "epochs": epochs, "rewind_step": rewind, "rewind_epochs": args.rewind_epochs,
            "scope": args.ticket_scope, "dense_accuracy": res.dense_accuracy,
            "ticket_accuracy": res.ticket_accuracy, "reinit_accuracy": res.reinit_accuracy}


# ---------------------------------------------------------------- structured
def uniform_width(dense, x, fraction: float) -> float:
    """Largest kept fraction ``u`` of every group whose MACs meet ``fraction`` of dense
    (what a uniform-ratio pruner such as Torch-Pruning's keeps), by bisection."""
    from prunekit.graph import build_groups

    model = copy.deepcopy(dense)
    opt = ProximalGroupLasso(torch.optim.SGD(model.parameters(), lr=0.0), model,
                             build_groups(model, x[:2]), lam=0.0, budget=Budget(1.0),
                             example_inputs=x[:2])

    def cost(u):
        return opt.current_cost({g.id: list(range(g.size - max(1, math.ceil(u * g.size))))
                                 for g in opt.groups if g.size > 1})

    lo, hi = 0.0, 1.0
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cost(mid) <= fraction * opt.dense_cost else (lo, mid)
    return lo


def min_keep_for(dense, x, args, fraction: float | None, rel: float | None = None):
    """``--min-keep``, or ``rel`` (``--min-keep-rel``) × the uniform width of the budget."""
    rel = args.min_keep_rel if rel is None else rel
    if not rel or fraction is None:
        return args.min_keep
    return round(rel * uniform_width(dense, x, fraction), 3)


def prox_select(dense, train, x, args, budget: Budget | None, lam: float, weights: str,
                cost_model=None, min_keep=None, on_step=None):
    """Proximal GL from the dense weights (SGD + momentum, ``--prox-epochs``), finalized
    (with ``--debias`` the survivors restart from the dense weights), not fine-tuned.

    Returns ``(model, opt, info)``; ``on_step(step, model, opt)`` is called with step 0
    before training and after every optimizer step (the VGG benchmark traces the budget
    dynamics with it)."""
    from prunekit.graph import build_groups

    harness.seed_all(args.seed)
    model = copy.deepcopy(dense)
    gs = build_groups(model, x[:2])
    sgd = torch.optim.SGD(model.parameters(), lr=args.prox_lr, momentum=0.9)
    min_keep = args.min_keep if min_keep is None else min_keep
    opt = ProximalGroupLasso(sgd, model, gs, lam=lam, example_inputs=x[:2], weights=weights,
                             budget=budget, min_keep=min_keep, cost_model=cost_model)
    hook = None
    if on_step is not None:
        on_step(0, model, opt)
        hook = lambda step, m: on_step(step, m, opt)  # noqa: E731
    t0 = time.process_time()
    fit(model, train, FitConfig(epochs=args.prox_epochs, seed=args.seed,
                                progress=args.progress), optimizer=opt, on_step=hook)
    info = {"lam": lam, "lam_final": opt.lam, "lam_at_budget": opt.state.lam_at_budget,
            "step_at_budget": opt.state.step_at_budget, "prox_steps": opt.steps,
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


def finetune(model: nn.Module, train, args, epochs: int, lr: float | None = None) -> None:
    fit(model, train, FitConfig(epochs=epochs, lr=args.lr if lr is None else lr,
                                seed=args.seed, progress=args.progress))


def tp_matched(dense, x, target_macs: int, args) -> list[dict]:
    """The Torch-Pruning model(s) standing for ``target_macs``: the nearest run if within
    1 % of it, else the two runs bracketing it (accuracy interpolated later)."""
    return incumbents.matched(dense, x[:1], target_macs, steps=6 if args.smoke else 20)


def structured(dense: nn.Module, data: harness.Splits, args) -> tuple[list[dict], list]:
    """Per MAC budget: GL against Torch-Pruning, same total epochs, matched MACs."""
    x = data.val[0][: args.latency_batch]
    rows = [measure(dense, data, "dense lenet5", args, dense=dense, method="dense", level="",
                    widths=_widths(dense))]
    total = args.prox_epochs + args.finetune_epochs
    cmps = []
    for fraction in args.budgets:
        level = f"{1 / fraction:g}x MACs"
        cmp = Comparison(f"LeNet-5 {level}", [
            Method(GL, total, args.gl_grid), Method(TP, total, args.tp_grid, incumbent=True)],
            "epochs", matched_macs=True)
        gl = _gl_run(dense, data, x, args, cmp, fraction, level)
        rows.append(gl)
        rows += _tp_runs(dense, data, x, args, cmp, gl, level)
        cmp.check_spent()
        cmps.append(cmp)
    for r in rows:
        if "macs" in r:
            r["mac_reduction"] = rows[0]["macs"] / r["macs"]
            if "measured_speedup" in r:
                r["rho"] = r["measured_speedup"] / r["mac_reduction"]
    return rows, cmps


def _gl_run(dense, data, x, args, cmp: Comparison, fraction: float, level: str) -> dict:
    """Every GL configuration of ``--gl-grid``, chosen on validation, tested once."""
    budget = Budget(fraction, "macs", dual_lr=args.dual_lr)
    runs = []
    for cfg in cmp.method(GL).configurations():
        keep = min_keep_for(dense, x, args, fraction, cfg.get("min_keep_rel"))
        model, _, info = prox_select(dense, data.train, x, args, budget, args.lam0,
                                     args.weights, min_keep=keep)
        finetune(model, data.train, args, args.finetune_epochs, cfg.get("lr"))
        runs.append((cfg, model, info, evaluate(model, data.val)))
    choice = cmp.select(GL, [(c, v) for c, _, _, v in runs])
    cmp.spend(GL, args.prox_epochs)
    cmp.spend(GL, args.finetune_epochs)
    _, model, info, val = next(r for r in runs if r[0] == choice.values)
    row = measure(model, data, f"{level} {GL}", args, dense=dense, method=GL, level=level,
                  role="prunekit", val_accuracy=val, selection=choice.to_dict(), **info)
    console.log(f"[{level}] GL: val {val:.4f} test {row['accuracy']:.4f} widths {info['widths']}")
    return row


def _tp_runs(dense, data, x, args, cmp: Comparison, gl: dict, level: str) -> list[dict]:
    """Torch-Pruning at GL's MACs (or bracketing them), every configuration of
    ``--tp-grid`` fine-tuned for the whole budget, chosen on validation."""
    total = args.prox_epochs + args.finetune_epochs
    matched = tp_matched(dense, x, gl["macs"], args)
    if len(matched) == 1:
        cmp.check_macs({GL: gl["macs"], TP: matched[0]["macs"]})
    rows = []
    for tp in matched:
        runs = []
        for cfg in cmp.method(TP).configurations():
            model = copy.deepcopy(tp["model"])
            harness.seed_all(args.seed)
            finetune(model, data.train, args, total, cfg.get("lr"))
            runs.append((cfg, model, evaluate(model, data.val)))
        choice = cmp.select(TP, [(c, v) for c, _, v in runs])
        _, model, val = next(r for r in runs if r[0] == choice.values)
        rows.append(measure(model, data, f"{level} {TP} ratio {tp['ratio']:.4f} for "
                            f"{gl['method']}", args,
                            dense=dense, method=TP, level=level, role="incumbent",
                            matched_to=GL, ratio=tp["ratio"], finetune_epochs=total,
                            widths=_widths(model), val_accuracy=val,
                            selection=choice.to_dict(),
                            match="within 1 %" if len(matched) == 1 else "bracket"))
        console.log(f"[{level}] TP ratio {tp['ratio']:.3f}: test {rows[-1]['accuracy']:.4f}")
    cmp.spend(TP, total)
    if len(matched) == 2:
        rows.append(interpolated(rows, gl, level))
    return rows


def interpolated(pair: list[dict], gl: dict, level: str) -> dict:
    """Torch-Pruning's accuracy at GL's MACs, linear in log-MACs between two runs."""
    a, b = sorted(pair, key=lambda r: r["macs"])
    t = (math.log(gl["macs"]) - math.log(a["macs"])) / (math.log(b["macs"]) - math.log(a["macs"]))
    return {"method": TP, "level": level, "role": "incumbent", "matched_to": GL,
            "match": "interpolated", "macs": gl["macs"],
            "accuracy": a["accuracy"] + t * (b["accuracy"] - a["accuracy"]),
            "interpolated_between": [a["macs"], b["macs"]]}


# ---------------------------------------------------------------- plots and tables
def plot_unstructured(rows: list[dict], dense_acc: float, path: Path) -> None:
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = [r for r in rows if r["method"] == method]
        ax.plot([r["weights"] / max(r["nonzero_weights"], 1) for r in pts],
                [100 * r["accuracy"] for r in pts], "s--" if method == BASELINE else "o-",
                label=method)
    ax.axhline(100 * dense_acc, ls="--", c="gray", label="dense")
    ax.set(xscale="log", xlabel="compression (weights / nonzero)", ylabel="test accuracy (%)",
           title="LeNet-300-100, Fashion-MNIST (lr chosen on validation)")
    ax.legend(fontsize=7)
    plots.save(fig, path, dpi=120)


def plot_lottery(lt: dict, path: Path) -> None:
    plt = plots.pyplot()
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
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    plots.save(fig, path, dpi=120)


def plot_structured(rows: list[dict], path: Path) -> None:
    series: dict[str, list[dict]] = {}
    for r in rows[1:]:
        if r.get("match") != "bracket":
            series.setdefault(r["method"], []).append(r)
    plots.accuracy_curves(series, rows[0]["accuracy"],
                          (("mac_reduction", "MAC reduction (theory)"),),
                          "LeNet-5, Fashion-MNIST (same epochs, matched MACs)", path,
                          figsize=(6.5, 4.5))


COLUMNS = {"unstructured": ["method", "target", "compression", "lr (val)", "test accuracy"],
           "structured": ["level", "method", "match", "widths", "MAC red.", "speedup (range)",
                          "test accuracy"]}


def table_rows(part: str, rows: list[dict]) -> list[list]:
    if part == "unstructured":
        return [[r["method"], f"{r['target_compression']:g}x",
                 f"{r['weights'] / max(r['nonzero_weights'], 1):.1f}x", r["lr"],
                 f"{r['accuracy']:.4f}"] for r in rows]
    return [[r.get("level", ""), r["method"], r.get("match", ""), str(r.get("widths", "")),
             f"{r.get('mac_reduction', 1.0):.2f}",
             f"{r['measured_speedup']:.2f} ({r['speedup_range'][0]:.2f}–"
             f"{r['speedup_range'][1]:.2f})" if "measured_speedup" in r else "—",
             f"{r['accuracy']:.4f}"] for r in rows]


# ---------------------------------------------------------------- main
def _int_or_float(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def _grid(text: str) -> dict[str, list[float]]:
    """``"min_keep_rel=0.7,0.8,0.9"`` → ``{"min_keep_rel": [0.7, 0.8, 0.9]}``."""
    key, _, values = text.partition("=")
    try:
        return {key: [float(v) for v in values.split(",")]}
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"a grid is NAME=V1,V2,..., got {text!r}") from err


def parse(argv=None) -> argparse.Namespace:
    p = harness.parser("training_methods", __doc__, smoke_help="synthetic data, seconds")
    p.add_argument("--part", choices=PARTS, default="structured")
    p.add_argument("--train-size", type=int, default=15000)
    p.add_argument("--dense-epochs", type=int, default=10)
    p.add_argument("--retrain-epochs", type=int, default=3,
                   help="retraining epochs after each unstructured level")
    p.add_argument("--lr-grid", type=float, nargs="+", default=[1e-3, 2e-3, 4e-3],
                   help="unstructured: the lr grid every method chooses from (on val)")
    p.add_argument("--prox-epochs", type=int, default=3)
    p.add_argument("--finetune-epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3, help="dense training and fine-tuning lr")
    p.add_argument("--prox-lr", type=float, default=0.02)
    p.add_argument("--lam0", type=float, default=0.002)
    p.add_argument("--dual-lr", type=float, default=0.01)
    p.add_argument("--budgets", type=float, nargs="*", default=[0.25, 0.125, 0.0625],
                   help="MAC budgets (fractions of dense) for the structured runs")
    p.add_argument("--weights", default="macs", help="group weights of the proximal runs")
    p.add_argument("--min-keep", type=_int_or_float, default=2,
                   help="minimum width of every group (int, or a fraction of its size)")
    p.add_argument("--min-keep-rel", type=float, default=0.0,
                   help="if > 0: min width = this × the uniform width meeting the budget")
    p.add_argument("--gl-grid", type=_grid, default={},
                   help="GL grid chosen on val, e.g. min_keep_rel=0.7,0.8,0.9 (or lr=...)")
    p.add_argument("--tp-grid", type=_grid, default={},
                   help="Torch-Pruning grid (same size as --gl-grid), e.g. lr=5e-4,1e-3,2e-3")
    p.add_argument("--debias", action=argparse.BooleanOptionalAction, default=True,
                   help="survivors restart from the dense weights after the prox chose them")
    p.add_argument("--levels", type=float, nargs="+", default=[10, 20, 30, 50, 100])
    p.add_argument("--variants", nargs="*", default=["swa_ramp"], choices=list(VARIANTS),
                   help="prunekit unstructured methods run against the torch baseline")
    p.add_argument("--ticket-fraction", type=float, default=0.05)
    p.add_argument("--ticket-rounds", type=int, default=13)
    p.add_argument("--ticket-epochs", type=int, default=0,
                   help="epochs of every lottery training run (0: --dense-epochs)")
    p.add_argument("--rewind-epochs", type=float, default=0.5)
    p.add_argument("--ticket-scope", default="global", choices=["global", "layer", "lamp"])
    p.add_argument("--latency-batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=10, help="timed passes per round")
    p.add_argument("--rounds", type=int, default=4, help="ABBA rounds against dense")
    p.add_operational("--progress", action="store_true", help="progress bars while training")
    p.add_operational("--dense-cache", type=Path,
                      default=Path.home() / ".cache" / "prunekit" / "bench",
                      help="directory caching the trained dense models")
    args = p.parse(argv)
    try:  # refuse unequal grids before any training
        Comparison("grids", [Method(GL, 1, args.gl_grid), Method(TP, 1, args.tp_grid)], "epochs")
    except RuleViolation as err:
        raise SystemExit(f"refused: {err}") from err
    if args.smoke:
        args.dense_epochs = args.retrain_epochs = args.prox_epochs = args.finetune_epochs = 1
        args.levels, args.ticket_rounds, args.repeats, args.rounds = [10, 20], 1, 2, 2
        args.budgets, args.latency_batch, args.lr_grid = args.budgets[:2], 16, args.lr_grid[:2]
    return args


def default_out(args) -> Path:
    if args.out is not None:
        return Path(args.out)
    return harness.out_path(args, f"training_methods_{args.part}_s{args.seed}")


def main(argv=None) -> dict:
    args = parse(argv)
    with harness.session(args) as rec:
        data = harness.fashion_mnist(args.train_size, args.seed, args.smoke)
        suffix = f"_s{args.seed}" + ("_smoke" if args.smoke else "")
        result, cmps = run_part(args, data, suffix)
        out = rec.write(default_out(args), result, comparison=cmps, splits=data)
    if args.part in COLUMNS:
        tables.show(f"{args.part} (seed {args.seed})", COLUMNS[args.part],
                    table_rows(args.part, result[args.part]))
    console.print(f"wrote {out}")
    return result


def run_part(args, data: harness.Splits, suffix: str) -> tuple[dict, list]:
    t0 = time.time()
    if args.part == "lottery":
        result = {"lottery": lottery(data, args)}
        if args.img_dir is not None:
            plot_lottery(result["lottery"], args.img_dir / f"methods_lottery{suffix}.png")
        return {**result, "wall_s": time.time() - t0}, []
    name = "lenet300" if args.part == "unstructured" else "lenet5"
    dense = dense_model(name, data, args)
    if args.part == "unstructured":
        dense_row = measure(dense, data, "dense lenet300", args, method="dense")
        rows, cmps = unstructured(dense, data, args)
        if args.img_dir is not None:
            plot_unstructured(rows, dense_row["accuracy"],
                              args.img_dir / f"methods_unstructured{suffix}.png")
        result = {"dense": dense_row, "unstructured": rows}
    else:
        try:
            rows, cmps = structured(dense, data, args)
        except RuleViolation as err:
            raise SystemExit(f"refused: {err}") from err
        if args.img_dir is not None:
            plot_structured(rows, args.img_dir / f"training_structured{suffix}.png")
        result = {"structured": rows}
    result["table"] = {"columns": COLUMNS[args.part],
                       "rows": table_rows(args.part, result[args.part])}
    return {**result, "wall_s": time.time() - t0}, cmps


if __name__ == "__main__":
    main()
