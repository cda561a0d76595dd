"""Branch and connection structures on Fashion-MNIST: train dense, proximal group lasso on
the structure at several λ, remove the zero units, fine-tune; measure.

* A small Inception-style CNN (4 inception modules of 4 branches): ``branch`` groups
  (one per module, one unit per branch). Reference: Torch-Pruning magnitude (L2, uniform
  channel ratio) at the MACs of a proximal run, same fine-tuning.
* A small DenseNet (3 dense blocks of 4 layers, torchvision ``_DenseBlock``):
  ``connection`` groups (one unit per connection ``i → j``); the surviving dependency
  diagram as JSON and PNG.

Accuracy on the full 10k test set (one read per reported row), parameters, MACs
(``prunekit.measure.count_macs``), CPU latency at batch 256 with 1 thread (dense and pruned
in paired ABBA rounds, medians, every reading kept) and ρ = measured speedup / MAC
reduction. The reference λ (fewest MACs within 1 pt of the dense model trained as long)
is chosen on a validation split carved from the training images; Torch-Pruning at its MACs
(within 1 %, or interpolated between the two nearest runs) is fine-tuned for as many
epochs as the proximal run used in all (proximal + fine-tuning).

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/structures_branch.py
    python benchmarks/structures_branch.py --smoke     # seconds, synthetic data

Writes ``benchmarks/results/structures_branch[_smoke].json``,
``docs/img/structures_branch*.png`` and ``docs/img/connection_*.png``.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from functools import partial
from pathlib import Path

import torch
from rich.console import Console
from torch import nn
from torchvision.models.densenet import _DenseBlock, _Transition

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import incumbents, plots, timing  # noqa: E402
from benchmarks.harness.rules import Comparison, Method  # noqa: E402
from prunekit.measure import count_macs  # noqa: E402
from prunekit.methods import FitConfig, ProximalGroupLasso, evaluate, fit  # noqa: E402
from prunekit.structures.branch import (  # noqa: E402
    branch_groups,
    find_branch_modules,
    prune_branches,
)
from prunekit.structures.connection import (  # noqa: E402
    connection_diagram,
    connection_groups,
    find_dense_blocks,
    prune_connections,
)

console = Console()


# ---------------------------------------------------------------- models
def cbr(i: int, o: int, k: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2, bias=False), nn.BatchNorm2d(o),
                         nn.ReLU(inplace=True))


class Inception(nn.Module):
    """1x1 | 1x1→3x3 | 1x1→3x3→3x3 | maxpool→1x1, concatenated."""

    def __init__(self, c: int, o1: int, r3: int, o3: int, r5: int, o5: int, op: int) -> None:
        super().__init__()
        self.branch1 = cbr(c, o1)
        self.branch2 = nn.Sequential(cbr(c, r3), cbr(r3, o3, 3))
        self.branch3 = nn.Sequential(cbr(c, r5), cbr(r5, o5, 3), cbr(o5, o5, 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), cbr(c, op))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def inception_cnn(n_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        cbr(1, 24, 3), nn.MaxPool2d(2),                       # 14x14
        Inception(24, 16, 16, 24, 8, 12, 12),                 # 64
        Inception(64, 16, 16, 32, 8, 16, 16),                 # 80
        nn.MaxPool2d(2),                                      # 7x7
        Inception(80, 24, 24, 32, 12, 16, 16),                # 88
        Inception(88, 24, 24, 32, 12, 16, 16),                # 88
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(88, n_classes))


class SmallDenseNet(nn.Module):
    """3 dense blocks of 4 layers (growth 8, bottleneck 2×growth), torchvision blocks."""

    def __init__(self, n_classes: int = 10, growth: int = 8, layers: int = 4) -> None:
        super().__init__()
        f = nn.Sequential()
        f.add_module("conv0", nn.Conv2d(1, 16, 3, padding=1, bias=False))
        f.add_module("norm0", nn.BatchNorm2d(16))
        f.add_module("relu0", nn.ReLU(inplace=True))
        f.add_module("pool0", nn.MaxPool2d(2))                   # 14x14
        c = 16
        for i, out in enumerate((24, 32, None), start=1):
            f.add_module(f"denseblock{i}", _DenseBlock(layers, c, 2, growth, 0.0))
            c += layers * growth
            if out is not None:
                f.add_module(f"transition{i}", _Transition(c, out))   # 7x7, then 3x3
                c = out
        f.add_module("norm5", nn.BatchNorm2d(c))
        self.features = f
        self.classifier = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.features(x))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


# ---------------------------------------------------------------- measurement
def measure(dense: nn.Module, model: nn.Module, data: harness.Splits, claim: str, x_lat,
            args, **extra) -> dict:
    """Test accuracy (one read, for ``claim``), validation accuracy, size, MACs, and the
    latency of dense and pruned in paired ABBA rounds (medians)."""
    model.eval()
    t = timing.paired({"dense": dense.eval(), "model": model}, x_lat, rounds=args.rounds,
                      repeats=args.repeats, warmup=2, threads=args.threads)
    d_macs, macs = count_macs(dense, x_lat[:1]), count_macs(model, x_lat[:1])
    sp = t.speedup("dense", "model")
    return {"accuracy": data.evaluate(claim, partial(evaluate, model)), "claim": claim,
            "val_accuracy": evaluate(model, data.val),
            "params": sum(p.numel() for p in model.parameters()), "macs": macs,
            "latency_ms": t.median_ms("model"), "dense_latency_ms": t.median_ms("dense"),
            "speedup": sp["speedup"], "speedup_range": [sp["min"], sp["max"]],
            "mac_reduction": d_macs / macs, "rho": sp["speedup"] / (d_macs / macs),
            "timing": t.to_dict(), **extra}


def ft_config(args, epochs: int, lr: float) -> FitConfig:
    return FitConfig(epochs=epochs, lr=lr, seed=args.seed, progress=args.progress)


def proximal(dense: nn.Module, groups_fn, train, args, lam: float,
             weights: str = "sqrt") -> tuple[nn.Module, dict]:
    model = copy.deepcopy(dense)
    groups = groups_fn(model)
    sgd = torch.optim.SGD(model.parameters(), lr=args.prox_lr, momentum=0.9)
    opt = ProximalGroupLasso(sgd, model, groups, lam=lam, weights=weights)
    t0 = time.process_time()
    fit(model, train, ft_config(args, args.prox_epochs, args.prox_lr), optimizer=opt)
    return model, {"lam": lam, "zero_units": sum(len(v) for v in opt.zero_groups().values()),
                   "prox_cpu_s": time.process_time() - t0, "weights": weights}


def prune_branches_restored(dense: nn.Module, trained: nn.Module, ex: torch.Tensor):
    """The prox picks, the dense weights survive: ``prune_branches(zero_only=True,
    restore=dense.state_dict())`` on a copy of ``trained`` — the branches proximal training
    drove exactly to zero are removed and the survivors restart from the dense weights
    (debiasing, like ``ProximalGroupLasso.finalize(restore=...)``). Returns
    ``(model, BranchResult)``."""
    model = copy.deepcopy(trained)
    res = prune_branches(model, ex, zero_only=True, restore=dense.state_dict())
    return model, res


# ---------------------------------------------------------------- inception
def run_inception(data: harness.Splits, x_lat, args) -> tuple[dict, Comparison | None]:
    train = data.train
    harness.seed_all(args.seed)
    dense = inception_cnn()
    fit(dense, train, ft_config(args, args.dense_epochs, args.lr))
    dense.eval()
    base = measure(dense, dense, data, "inception dense", x_lat, args, method="dense")
    console.log(f"inception dense: acc {base['accuracy']:.4f} MACs {base['macs']}")
    ctrl = control(dense, data, "inception", x_lat, args) if args.control else None
    if ctrl:
        console.log(f"inception dense, same epochs: acc {ctrl['accuracy']:.4f}")
    ex = x_lat[:2]
    rows = []
    for lam in args.branch_lams:
        harness.seed_all(args.seed)
        model, info = proximal(dense, lambda m: branch_groups(m, ex), train, args, lam,
                               args.branch_weights)
        modules = [bm.name for bm in find_branch_modules(model, ex)]
        if args.restore:
            info["prox_val_accuracy"] = evaluate(model, data.val)
            model, res = prune_branches_restored(dense, model, ex)
        else:
            res = prune_branches(model, ex, zero_only=True)
        info["restore"] = args.restore
        info["pruned_val_accuracy_before_ft"] = evaluate(model, data.val)
        fit(model, train, ft_config(args, args.finetune_epochs, args.ft_lr))
        row = measure(dense, model, data, f"inception λ={lam:g}", x_lat, args,
                      method="prunekit proximal branch",
                      removed=res.removed, report=res.report(),
                      modules_with_removal=sum(1 for m in modules if res.removed.get(m)),
                      modules=len(modules), **info)
        rows.append(row)
        console.log(f"inception λ={lam}: acc {row['accuracy']:.4f} branches "
                    f"{res.plan.n_removed} in {row['modules_with_removal']}/{len(modules)} "
                    f"modules, MACs ×{row['mac_reduction']:.2f}, speedup ×{row['speedup']:.2f}")
    ref = _pick(rows, (ctrl or base)["val_accuracy"])
    tp_rows, cmp = [], None
    if ref is not None and ref["macs"] < base["macs"]:
        total = args.prox_epochs + args.finetune_epochs
        cmp = Comparison("inception branches", [
            Method("prunekit proximal branch", total),
            Method("Torch-Pruning magnitude", total, incumbent=True)], "epochs",
            matched_macs=True)
        cmp.spend("prunekit proximal branch", total)
        tp_rows = torch_pruning_matched(dense, data, x_lat, args, ref, cmp)
        cmp.check_spent()
    return {"dense": base, "dense_same_epochs": ctrl, "proximal": rows,
            "torch_pruning": tp_rows, "reference_lam": ref["lam"] if ref else None}, cmp


def _pick(rows: list[dict], dense_val: float) -> dict | None:
    """The run with the fewest MACs within 1 pt of dense on validation (else the most
    accurate on validation)."""
    ok = [r for r in rows if r["val_accuracy"] >= dense_val - 0.01]
    if ok:
        return min(ok, key=lambda r: r["macs"])
    return max(rows, key=lambda r: r["val_accuracy"]) if rows else None


def torch_pruning_matched(dense, data, x_lat, args, ref: dict, cmp: Comparison) -> list[dict]:
    """Torch-Pruning (as its docs say) at the reference run's MACs, fine-tuned for the
    whole budget (proximal + fine-tuning epochs); a bracketing pair is interpolated."""
    total = args.prox_epochs + args.finetune_epochs
    runs = incumbents.matched(dense, x_lat[:1], ref["macs"], steps=6 if args.smoke else 16)
    if len(runs) == 1:
        cmp.check_macs({"prunekit proximal branch": ref["macs"],
                        "Torch-Pruning magnitude": runs[0]["macs"]})
    rows = []
    for r in runs:
        model = r["model"]
        harness.seed_all(args.seed)
        fit(model, data.train, ft_config(args, total, args.ft_lr))
        rows.append(measure(dense, model, data, f"inception TP ratio {r['ratio']:.4f}", x_lat,
                            args, method="Torch-Pruning magnitude (L2)", ratio=r["ratio"],
                            target_macs=ref["macs"], finetune_epochs=total,
                            match="within 1 %" if len(runs) == 1 else "bracket"))
    cmp.spend("Torch-Pruning magnitude", total)
    if len(rows) == 2:
        a, b = sorted(rows, key=lambda x: x["macs"])
        t = (math.log(ref["macs"]) - math.log(a["macs"])) / \
            (math.log(b["macs"]) - math.log(a["macs"]))
        rows.append({"method": "Torch-Pruning magnitude (L2)", "match": "interpolated",
                     "macs": ref["macs"], "mac_reduction": ref["mac_reduction"],
                     "accuracy": a["accuracy"] + t * (b["accuracy"] - a["accuracy"]),
                     "speedup": a["speedup"] + t * (b["speedup"] - a["speedup"])})
    return rows


# ---------------------------------------------------------------- densenet
def run_densenet(data: harness.Splits, x_lat, args) -> dict:
    train = data.train
    harness.seed_all(args.seed)
    dense = SmallDenseNet()
    fit(dense, train, ft_config(args, args.dense_epochs, args.lr))
    dense.eval()
    base = measure(dense, dense, data, "densenet dense", x_lat, args, method="dense")
    ex = x_lat[:2]
    total = _count(find_dense_blocks(dense, ex))
    console.log(f"densenet dense: acc {base['accuracy']:.4f} connections {total}")
    ctrl = control(dense, data, "densenet", x_lat, args) if args.control else None
    rows = []
    for lam in args.connection_lams:
        harness.seed_all(args.seed)
        model, info = proximal(dense, lambda m: connection_groups(m, ex, "connection"), train,
                               args, lam)
        res = prune_connections(model, ex, zero_only=True)
        fit(model, train, ft_config(args, args.finetune_epochs, args.ft_lr))
        kept = _count(find_dense_blocks(model, ex))
        png = None if args.img_dir is None else str(
            args.img_dir / f"connection_lam{lam:g}{args.suffix}.png")
        diagram = connection_diagram(model, ex, png=png, title=f"SmallDenseNet, λ={lam:g}")
        row = measure(dense, model, data, f"densenet λ={lam:g}", x_lat, args,
                      method="prunekit proximal connection",
                      connections_total=total, connections_kept=kept,
                      pair_connections_removed=1 - kept["pairs"] / total["pairs"],
                      all_connections_removed=1 - kept["all"] / total["all"],
                      removed_layers=res.plan.removed_layers, diagram=diagram, **info)
        rows.append(row)
        console.log(f"densenet λ={lam}: acc {row['accuracy']:.4f} i→j removed "
                    f"{row['pair_connections_removed']:.0%}, layers removed "
                    f"{sum(len(v) for v in res.plan.removed_layers.values())}, MACs "
                    f"×{row['mac_reduction']:.2f}")
    return {"dense": base, "dense_same_epochs": ctrl, "proximal": rows}


def control(dense: nn.Module, data: harness.Splits, name: str, x_lat, args) -> dict:
    """The dense model trained as long as the pruned ones (prox + fine-tune epochs more,
    Adam at the fine-tuning rate): the accuracy a pruned run should be compared with."""
    harness.seed_all(args.seed)
    model = copy.deepcopy(dense)
    fit(model, data.train, ft_config(args, args.prox_epochs + args.finetune_epochs,
                                     args.ft_lr))
    return measure(dense, model, data, f"{name} dense, same total epochs", x_lat, args,
                   method="dense, same total epochs")


def _count(blocks) -> dict[str, int]:
    pairs = sum(1 for b in blocks for _s, j in b.connections() if j != "out")
    return {"pairs": pairs, "all": sum(len(b.connections()) for b in blocks)}


# ---------------------------------------------------------------- plots, main
def plot(results: dict, args) -> None:
    plt = plots.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    inc = results["inception"]
    d = inc["dense"]
    a.scatter([1.0], [d["accuracy"]], c="k", label="dense")
    a.scatter([r["mac_reduction"] for r in inc["proximal"]],
              [r["accuracy"] for r in inc["proximal"]], c="tab:blue",
              label="prunekit branch (MAC theory)")
    a.scatter([r["speedup"] for r in inc["proximal"]], [r["accuracy"] for r in inc["proximal"]],
              c="tab:blue", marker="x", label="prunekit branch (measured)")
    for t in inc["torch_pruning"]:
        if t.get("match") == "bracket":
            continue
        a.scatter([t["mac_reduction"]], [t["accuracy"]], c="tab:red",
                  label=f"Torch-Pruning ({t['match']}, MAC theory)")
        a.scatter([t["speedup"]], [t["accuracy"]], c="tab:red", marker="x",
                  label="Torch-Pruning (measured)")
    ref = inc.get("dense_same_epochs") or d
    if inc.get("dense_same_epochs"):
        a.scatter([1.0], [ref["accuracy"]], c="k", marker="s", label="dense, same total epochs")
    a.axhline(ref["accuracy"] - 0.01, ls=":", c="gray")
    a.set_xlabel("speedup vs dense (×)")
    a.set_ylabel("test accuracy")
    a.set_title("Inception CNN: whole branches removed")
    a.legend(fontsize=7)
    dn = results["densenet"]
    b.scatter([0.0], [dn["dense"]["accuracy"]], c="k", label="dense")
    b.scatter([r["pair_connections_removed"] for r in dn["proximal"]],
              [r["accuracy"] for r in dn["proximal"]], c="tab:green", label="prunekit connection")
    dref = dn.get("dense_same_epochs") or dn["dense"]
    if dn.get("dense_same_epochs"):
        b.scatter([0.0], [dref["accuracy"]], c="k", marker="s", label="dense, same total epochs")
    b.axhline(dref["accuracy"] - 0.01, ls=":", c="gray", label="1 pt below the fair baseline")
    b.axvline(0.5, ls=":", c="gray")
    b.set_xlabel("fraction of i→j connections removed")
    b.set_title("Small DenseNet: connections removed")
    b.legend(fontsize=7)
    plots.save(fig, args.img_dir / f"structures_branch{args.suffix}.png")


def parse(argv=None):
    p = harness.parser("structures_branch", __doc__, smoke_help="synthetic data, seconds")
    p.add_argument("--train-size", type=int, default=6000)
    p.add_argument("--dense-epochs", type=int, default=3)
    p.add_argument("--prox-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--prox-lr", type=float, default=0.02)
    p.add_argument("--ft-lr", type=float, default=5e-4)
    p.add_argument("--branch-lams", type=float, nargs="+", default=[0.04, 0.1, 0.25])
    p.add_argument("--connection-lams", type=float, nargs="+", default=[0.06, 0.15, 0.35])
    p.add_argument("--branch-weights", default="sqrt",
                   help="group weights of the branch penalty (ProximalGroupLasso weights=)")
    p.add_argument("--restore", action=argparse.BooleanOptionalAction, default=True,
                   help="after proximal training, remove the zero branches from a fresh copy "
                        "of the dense model (survivors keep the dense weights)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--skip", nargs="*", default=[], choices=["inception", "densenet"])
    p.add_argument("--control", action=argparse.BooleanOptionalAction, default=True,
                   help="also train the dense model for as many epochs as the pruned runs")
    p.add_operational("--progress", action="store_true")
    args = p.parse(argv)
    if args.smoke:
        args.dense_epochs, args.prox_epochs, args.finetune_epochs = 1, 1, 1
        args.branch_lams, args.connection_lams = [20.0], [20.0]
        args.batch, args.repeats, args.rounds = 16, 1, 2
    args.suffix = "_smoke" if args.smoke else ""
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    with harness.session(args) as rec:
        data = harness.fashion_mnist(args.train_size, args.seed, args.smoke)
        x_lat = data.val[0][: args.batch]
        t0 = time.time()
        results: dict = {}
        cmps = []
        if "inception" not in args.skip:
            results["inception"], cmp = run_inception(data, x_lat, args)
            cmps += [cmp] if cmp else []
        if "densenet" not in args.skip:
            results["densenet"] = run_densenet(data, x_lat, args)
        results["wall_s"] = time.time() - t0
        path = rec.write(harness.out_path(args), results, comparison=cmps, splits=data)
        if "inception" in results and "densenet" in results and args.img_dir is not None:
            plot(results, args)
    console.log(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
