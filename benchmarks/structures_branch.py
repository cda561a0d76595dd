"""Branch and connection structures on Fashion-MNIST: train dense, proximal group lasso on
the structure at several λ, remove the zero units, fine-tune; measure.

* A small Inception-style CNN (4 inception modules of 4 branches): ``branch`` groups
  (one per module, one unit per branch). Reference: Torch-Pruning magnitude (L2, uniform
  channel ratio) at the MACs of a proximal run, same fine-tuning.
* A small DenseNet (3 dense blocks of 4 layers, torchvision ``_DenseBlock``):
  ``connection`` groups (one unit per connection ``i → j``); the surviving dependency
  diagram as JSON and PNG.

Accuracy on the full 10k test set, parameters, MACs (``prunekit.measure.count_macs``),
CPU latency at batch 256 with 1 thread (dense and pruned timed in alternation, median of
rounds) and ρ = measured speedup / MAC reduction.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/structures_branch.py
    .venv/bin/python benchmarks/structures_branch.py --smoke     # seconds, synthetic data

Writes ``benchmarks/results/structures_branch[_smoke].json``,
``docs/img/structures_branch*.png`` and ``docs/img/connection_*.png``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from torch import nn
from torchvision.models.densenet import _DenseBlock, _Transition

from prunekit.measure import count_macs, latency
from prunekit.methods import FitConfig, ProximalGroupLasso, evaluate, fit
from prunekit.structures.branch import (
    branch_groups,
    find_branch_modules,
    prune_branches,
)
from prunekit.structures.connection import (
    connection_diagram,
    connection_groups,
    find_dense_blocks,
    prune_connections,
)

ROOT = Path(__file__).resolve().parent.parent
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


# ---------------------------------------------------------------- data, measurement
def load_data(args):
    if args.smoke:
        gen = torch.Generator().manual_seed(0)
        proto = torch.rand(10, 1, 28, 28, generator=gen)
        y = torch.randint(0, 10, (384,), generator=gen)
        x = (proto[y] + 0.3 * torch.rand(384, 1, 28, 28, generator=gen)).clamp(0, 1)
        return (x[:256], y[:256]), (x[256:], y[256:])
    from prunekit.data import load_fashion_mnist

    xtr, ytr, xte, yte = load_fashion_mnist()
    idx = torch.randperm(len(ytr), generator=torch.Generator().manual_seed(args.seed))
    idx = idx[: args.train_size]
    return (xtr[idx], ytr[idx]), (xte, yte)


def timed_pair(dense: nn.Module, model: nn.Module, x: torch.Tensor, args) -> tuple[float, float]:
    """Median latency (ms) of dense and pruned, timed in alternating rounds (load drifts)."""
    d, p = [], []
    for _ in range(args.rounds):
        for net, out in ((dense, d), (model, p)):
            stats = latency(net.eval(), x, threads=args.threads, warmup=2,
                            repeats=args.repeats)
            out.append(stats.median_ms)
    return sorted(d)[len(d) // 2], sorted(p)[len(p) // 2]


def measure(dense: nn.Module, model: nn.Module, test, x_lat, args, **extra) -> dict:
    model.eval()
    d_ms, p_ms = timed_pair(dense, model, x_lat, args)
    d_macs, macs = count_macs(dense, x_lat[:1]), count_macs(model, x_lat[:1])
    speedup, mac_red = d_ms / p_ms, d_macs / macs
    return {"accuracy": evaluate(model, test), "params": sum(p.numel() for p in
                                                            model.parameters()),
            "macs": macs, "latency_ms": p_ms, "dense_latency_ms": d_ms,
            "speedup": speedup, "mac_reduction": mac_red, "rho": speedup / mac_red, **extra}


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
def run_inception(train, test, x_lat, args) -> dict:
    torch.manual_seed(args.seed)
    dense = inception_cnn()
    fit(dense, train, ft_config(args, args.dense_epochs, args.lr))
    dense.eval()
    base = measure(dense, dense, test, x_lat, args, method="dense")
    console.log(f"inception dense: acc {base['accuracy']:.4f} MACs {base['macs']}")
    ctrl = control(dense, train, test, x_lat, args) if args.control else None
    if ctrl:
        console.log(f"inception dense, same epochs: acc {ctrl['accuracy']:.4f}")
    ex = x_lat[:2]
    rows = []
    for lam in args.branch_lams:
        torch.manual_seed(args.seed)
        model, info = proximal(dense, lambda m: branch_groups(m, ex), train, args, lam,
                               args.branch_weights)
        modules = [bm.name for bm in find_branch_modules(model, ex)]
        if args.restore:
            info["prox_accuracy"] = evaluate(model, test)
            model, res = prune_branches_restored(dense, model, ex)
        else:
            res = prune_branches(model, ex, zero_only=True)
        info["restore"] = args.restore
        info["pruned_accuracy_before_ft"] = evaluate(model, test)
        fit(model, train, ft_config(args, args.finetune_epochs, args.ft_lr))
        row = measure(dense, model, test, x_lat, args, method="prunekit proximal branch",
                      removed=res.removed, report=res.report(),
                      modules_with_removal=sum(1 for m in modules if res.removed.get(m)),
                      modules=len(modules), **info)
        rows.append(row)
        checkpoint(args, "inception", {"dense": base, "proximal": rows})
        console.log(f"inception λ={lam}: acc {row['accuracy']:.4f} branches "
                    f"{res.plan.n_removed} in {row['modules_with_removal']}/{len(modules)} "
                    f"modules, MACs ×{row['mac_reduction']:.2f}, speedup ×{row['speedup']:.2f}")
    ref = _pick(rows, (ctrl or base)["accuracy"])
    tp_row = None
    if ref is not None and ref["macs"] < base["macs"]:
        tp_row = torch_pruning_matched(dense, train, test, x_lat, args, ref["macs"])
        console.log(f"Torch-Pruning at {ref['macs']} MACs: acc {tp_row['accuracy']:.4f}")
    return {"dense": base, "dense_same_epochs": ctrl, "proximal": rows, "torch_pruning": tp_row,
            "reference_lam": ref["lam"] if ref else None}


def _pick(rows: list[dict], dense_acc: float) -> dict | None:
    """The run with the fewest MACs within 1 pt of dense (else the most accurate)."""
    ok = [r for r in rows if r["accuracy"] >= dense_acc - 0.01]
    if ok:
        return min(ok, key=lambda r: r["macs"])
    return max(rows, key=lambda r: r["accuracy"]) if rows else None


def torch_pruning_matched(dense, train, test, x_lat, args, target_macs: int) -> dict:
    import torch_pruning as tp

    def pruned(ratio):
        m = copy.deepcopy(dense)
        tp.pruner.MagnitudePruner(m, x_lat[:1], tp.importance.MagnitudeImportance(p=2),
                                  pruning_ratio=ratio, ignored_layers=[m[-1]]).step()
        return m

    lo, hi = 0.0, 0.95
    for _ in range(2 if args.smoke else 10):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count_macs(pruned(mid), x_lat[:1]) > target_macs else (lo, mid)
    model = pruned(hi)
    fit(model, train, ft_config(args, args.finetune_epochs, args.ft_lr))
    return measure(dense, model, test, x_lat, args, method="Torch-Pruning magnitude (L2)",
                   ratio=hi, target_macs=target_macs, finetune_epochs=args.finetune_epochs)


# ---------------------------------------------------------------- densenet
def run_densenet(train, test, x_lat, args) -> dict:
    torch.manual_seed(args.seed)
    dense = SmallDenseNet()
    fit(dense, train, ft_config(args, args.dense_epochs, args.lr))
    dense.eval()
    base = measure(dense, dense, test, x_lat, args, method="dense")
    ex = x_lat[:2]
    total = _count(find_dense_blocks(dense, ex))
    console.log(f"densenet dense: acc {base['accuracy']:.4f} connections {total}")
    ctrl = control(dense, train, test, x_lat, args) if args.control else None
    if ctrl:
        console.log(f"densenet dense, same epochs: acc {ctrl['accuracy']:.4f}")
    rows = []
    for lam in args.connection_lams:
        torch.manual_seed(args.seed)
        model, info = proximal(dense, lambda m: connection_groups(m, ex, "connection"), train,
                               args, lam)
        res = prune_connections(model, ex, zero_only=True)
        fit(model, train, ft_config(args, args.finetune_epochs, args.ft_lr))
        kept = _count(find_dense_blocks(model, ex))
        tag = f"lam{lam:g}"
        diagram = connection_diagram(model, ex, png=str(args.img_dir / f"connection_{tag}"
                                                               f"{args.suffix}.png"),
                                     title=f"SmallDenseNet, λ={lam:g}")
        row = measure(dense, model, test, x_lat, args, method="prunekit proximal connection",
                      connections_total=total, connections_kept=kept,
                      pair_connections_removed=1 - kept["pairs"] / total["pairs"],
                      all_connections_removed=1 - kept["all"] / total["all"],
                      removed_layers=res.plan.removed_layers, diagram=diagram, **info)
        rows.append(row)
        checkpoint(args, "densenet", {"dense": base, "proximal": rows})
        console.log(f"densenet λ={lam}: acc {row['accuracy']:.4f} i→j removed "
                    f"{row['pair_connections_removed']:.0%}, layers removed "
                    f"{sum(len(v) for v in res.plan.removed_layers.values())}, MACs "
                    f"×{row['mac_reduction']:.2f}")
    return {"dense": base, "dense_same_epochs": ctrl, "proximal": rows}


def checkpoint(args, key: str, part: dict) -> None:
    """Partial results after every run (long runs on a busy machine)."""
    if args.smoke:
        return
    path = args.results_dir / f"structures_branch_{args.tag or 'run'}_partial.json"
    path.write_text(json.dumps({"config": str(vars(args)), key: part}, indent=1, default=str))


def control(dense: nn.Module, train, test, x_lat, args) -> dict:
    """The dense model trained as long as the pruned ones (prox + fine-tune epochs more,
    Adam at the fine-tuning rate): the accuracy a pruned run should be compared with."""
    torch.manual_seed(args.seed)
    model = copy.deepcopy(dense)
    fit(model, train, ft_config(args, args.prox_epochs + args.finetune_epochs, args.ft_lr))
    return measure(dense, model, test, x_lat, args, method="dense, same total epochs")


def _count(blocks) -> dict[str, int]:
    pairs = sum(1 for b in blocks for _s, j in b.connections() if j != "out")
    return {"pairs": pairs, "all": sum(len(b.connections()) for b in blocks)}


# ---------------------------------------------------------------- plots, main
def plot(results: dict, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    inc = results["inception"]
    d = inc["dense"]
    a.scatter([1.0], [d["accuracy"]], c="k", label="dense")
    a.scatter([r["mac_reduction"] for r in inc["proximal"]],
              [r["accuracy"] for r in inc["proximal"]], c="tab:blue",
              label="prunekit branch (MAC theory)")
    a.scatter([r["speedup"] for r in inc["proximal"]], [r["accuracy"] for r in inc["proximal"]],
              c="tab:blue", marker="x", label="prunekit branch (measured)")
    if inc["torch_pruning"]:
        t = inc["torch_pruning"]
        a.scatter([t["mac_reduction"]], [t["accuracy"]], c="tab:red",
                  label="Torch-Pruning (MAC theory)")
        a.scatter([t["speedup"]], [t["accuracy"]], c="tab:red", marker="x",
                  label="Torch-Pruning (measured)")
    for k, other in enumerate(results.get("inception_other_runs", [])):
        rows = other["proximal"]
        a.scatter([r["mac_reduction"] for r in rows], [r["accuracy"] for r in rows],
                  facecolors="none", edgecolors=f"C{k + 4}",
                  label=f"{other.get('tag', 'other run')} (MAC theory)")
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
    fig.tight_layout()
    fig.savefig(args.img_dir / f"structures_branch{args.suffix}.png", dpi=110)
    plt.close(fig)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--seed", type=int, default=0)
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
                        "of the dense model (survivors keep the dense weights); "
                        "--no-restore: fine-tune the shrunken survivors (runs 1-2)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--skip", nargs="*", default=[], choices=["inception", "densenet"])
    p.add_argument("--results-dir", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--img-dir", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--control", action="store_true",
                   help="also train the dense model for as many epochs as the pruned runs")
    p.add_argument("--tag", default="", help="write structures_branch_<tag>.json (a part)")
    p.add_argument("--merge", type=Path, nargs="*", default=None,
                   help="combine part JSONs (e.g. one per model, run in parallel) and plot")
    p.add_argument("--keep-existing", action="store_true",
                   help="with --merge: start from structures_branch.json; replaced results "
                        "move to <model>_other_runs")
    args = p.parse_args(argv)
    if args.smoke:
        args.dense_epochs, args.prox_epochs, args.finetune_epochs = 1, 1, 1
        args.branch_lams, args.connection_lams = [20.0], [20.0]
        args.batch, args.repeats, args.rounds = 16, 1, 1
    args.suffix = "_smoke" if args.smoke else ""
    return args


def main(argv=None) -> dict:
    from prunekit.measure.machine import machine_info

    args = parse(argv)
    if args.merge:
        return merge(args)
    torch.set_num_threads(args.threads)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    args.img_dir.mkdir(parents=True, exist_ok=True)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict = {"config": config, "machine": machine_info()}
    console.log(f"config {config}")
    train, test = load_data(args)
    x_lat = test[0][: args.batch]
    t0 = time.time()
    if "inception" not in args.skip:
        results["inception"] = run_inception(train, test, x_lat, args)
    if "densenet" not in args.skip:
        results["densenet"] = run_densenet(train, test, x_lat, args)
    results["wall_s"] = time.time() - t0
    name = f"structures_branch_{args.tag}" if args.tag else f"structures_branch{args.suffix}"
    path = args.results_dir / f"{name}.json"
    path.write_text(json.dumps(results, indent=1, default=str))
    if "inception" in results and "densenet" in results:
        plot(results, args)
    console.log(f"wrote {path}")
    return results


def merge(args) -> dict:
    """One result file from parts (``--tag`` runs), with the plot.

    The last part holding a model is that model's main result; an earlier one for the
    same model (or, with ``--keep-existing``, the one already in
    ``structures_branch.json``) moves to ``"<model>_other_runs"`` (a list, each entry
    tagged), so earlier rows are never lost.
    """
    path = args.results_dir / f"structures_branch{args.suffix}.json"
    results: dict = {"config": [], "machine": None, "wall_s": []}
    if args.keep_existing and path.exists():
        old = json.loads(path.read_text())
        configs = old["config"] if isinstance(old["config"], list) else [old["config"]]
        results.update(old)
        results["config"], results["wall_s"] = list(configs), _as_list(old.get("wall_s"))
        for key in ("inception", "densenet"):
            if key in old:
                tags = [c.get("tag") for c in configs if isinstance(c, dict)
                        and key not in c.get("skip", [])]
                results[key] = {**old[key], "tag": old[key].get("tag") or "+".join(
                    t for t in tags if t)}
    for p in args.merge:
        part = json.loads(p.read_text())
        results["config"].append(part["config"])
        results["wall_s"].append(part.get("wall_s"))
        results["machine"] = results["machine"] or part["machine"]
        for key in ("inception", "densenet"):
            if key not in part:
                continue
            if key in results:
                results.setdefault(f"{key}_other_runs", []).append(results[key])
            results[key] = {**part[key], "tag": part["config"].get("tag")}
    path.write_text(json.dumps(results, indent=1, default=str))
    if "inception" in results and "densenet" in results:
        plot(results, args)
    console.log(f"wrote {path}")
    return results


def _as_list(x) -> list:
    return list(x) if isinstance(x, list) else [x]


if __name__ == "__main__":
    main()
