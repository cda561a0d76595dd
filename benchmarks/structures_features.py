"""Input features, SE gates and low-rank layers on Fashion-MNIST (issue 10, part 2).

Three experiments, same data (a training subset, the full 10k test set), one CPU thread:

* **input_feature** — an MLP (784-256-10) trained dense, then with proximal group lasso on
  its input pixels (:func:`prunekit.structures.input_feature.feature_groups`) at several
  λ; the exactly-zero pixels are removed (the model keeps taking full images through
  ``FeatureSelect``), then one fine-tuning epoch. Target: ≥ 50 % of the pixels removed at
  ≤ 1 pt accuracy loss; PNG of the kept pixels.
* **se_gate** — a small SE-CNN trained dense (plain, and with an L1 push on the gate
  values); gate statistics on calibration images; the consistently suppressed channels
  removed *without fine-tuning*. Target: ≤ 0.5 pt accuracy cost.
* **lowrank** — LeNet-300-100: proximal group lasso alone (neurons, parameter budget)
  vs the Frobenius + nuclear hybrid (:class:`~prunekit.structures.LowRankProx`) then
  factorization to the *same parameter count* (and only where measured latency
  improves), both fine-tuned alike. Target: hybrid at least as accurate.

Choices (the λ shown for input features, the best hybrid at matched parameters) are
made on a validation split carved from the training images; every reported accuracy is
one read of the test set. Latency: each model against its dense reference in paired ABBA
rounds (medians, every reading kept).

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/structures_features.py
    python benchmarks/structures_features.py --smoke      # seconds, synthetic

Writes ``benchmarks/results/structures_features[_smoke].json`` and
``docs/img/features_*.png``, ``docs/img/se_*.png``, ``docs/img/lowrank_*.png``.
"""

from __future__ import annotations

import copy
import sys
import time
from functools import partial
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import plots, timing  # noqa: E402
from prunekit.methods import Budget, FitConfig, ProximalGroupLasso, evaluate, fit  # noqa: E402
from prunekit.structures import input_feature as feat  # noqa: E402
from prunekit.structures import lowrank as lr  # noqa: E402
from prunekit.structures import se_gate as se  # noqa: E402

console = Console()


# ---------------------------------------------------------------- models
def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def lenet300() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, 10))


class SE(nn.Module):
    """A user SE block: ``x · σ(W_e ReLU(W_s avgpool(x)))``; keeps its last gate."""

    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(c, c // r, 1)
        self.excite = nn.Conv2d(c // r, c, 1)
        self.last_gate: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.excite(torch.relu(self.squeeze(x.mean((2, 3), keepdim=True)))))
        self.last_gate = g
        return x * g


def se_cnn() -> nn.Module:
    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), SE(o)]
    return nn.Sequential(*block(1, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                         *block(32, 32), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 9, 10))


# ---------------------------------------------------------------- data and measurement
def measure(net, data: harness.Splits, claim: str, x_lat, args, ref=None, **extra) -> dict:
    """Test accuracy (the one read for ``claim``), size, MACs and latency: paired with
    ``ref`` (its dense reference) in ABBA rounds when given, else alone; medians."""
    from prunekit.measure import count_macs, count_params

    net.eval()
    models = {"model": net} if ref is None else {"model": net, "ref": ref.eval()}
    t = timing.paired(models, x_lat, rounds=args.rounds, repeats=args.repeats,
                      warmup=2 if args.smoke else 5, threads=1)
    row = {"accuracy": data.evaluate(claim, partial(evaluate, net)), "claim": claim,
           "params": count_params(net), "macs": count_macs(net, x_lat[:1]),
           "latency_ms": t.median_ms("model"), "timing": t.to_dict(), **extra}
    if ref is not None:
        row["ref_latency_ms"] = t.median_ms("ref")
        row["measured_speedup"] = t.speedup("ref", "model")["speedup"]
    return row


def cfg(args, epochs, lr_=1e-3):
    return FitConfig(epochs=epochs, lr=lr_, seed=args.seed, batch_size=128,
                     progress=args.progress)


# ---------------------------------------------------------------- input features
def features(data: harness.Splits, x_lat, args) -> dict:
    """Select pixels by proximal GL, then refit: the dense weights restricted to the kept
    pixels, fine-tuned (a relaxed group lasso — the selection is not biased by shrinkage).
    The reference is the dense model trained for the same extra epochs."""
    train = data.train
    harness.seed_all(args.seed)
    dense = mlp()
    fit(dense, train, cfg(args, args.epochs))
    ref = copy.deepcopy(dense)
    fit(ref, train, cfg(args, args.finetune_epochs))
    rows = [measure(ref, data, "features dense", x_lat, args, lam=0.0, pixels_kept=784,
                    val_accuracy=evaluate(ref, data.val),
                    method=f"dense ({args.epochs + args.finetune_epochs} epochs)")]
    best = None
    for lam in args.feature_lams:
        model = copy.deepcopy(dense)
        groups = feat.feature_groups(model, x_lat[:2])
        opt = ProximalGroupLasso(torch.optim.Adam(model.parameters(), lr=1e-3), model, groups,
                                 lam=lam)
        fit(model, train, cfg(args, args.prox_epochs), optimizer=opt)
        res = feat.prune_features(model, x_lat[:2])
        acc_prox = data.evaluate(f"features λ={lam:g} prox model", partial(evaluate, model))
        refit = copy.deepcopy(dense)
        feat.remove_features(refit, res.plan.removed, x_lat[:2])
        acc_before_ft = data.evaluate(f"features λ={lam:g} before fine-tuning",
                                      partial(evaluate, refit))
        fit(refit, train, cfg(args, args.finetune_epochs))
        row = measure(refit, data, f"features λ={lam:g}", x_lat, args, ref=ref,
                      method="proximal GL on input pixels + refit", lam=lam,
                      pixels_kept=len(res.kept), accuracy_prox_model=acc_prox,
                      accuracy_before_finetune=acc_before_ft, kept=res.kept,
                      val_accuracy=evaluate(refit, data.val))
        row["pixels_removed_fraction"] = 1 - len(res.kept) / 784
        rows.append(row)
        console.log(f"[features] λ={lam:g}: kept {len(res.kept)}/784 pixels, val "
                    f"{row['val_accuracy']:.4f}, test {row['accuracy']:.4f}")
        ok = rows[0]["val_accuracy"] - row["val_accuracy"] <= 0.01  # chosen on validation
        if ok and (best is None or row["pixels_kept"] < best["pixels_kept"]):
            best = row
    base = rows[0]
    for r in rows:
        r["accuracy_drop_pt"] = 100 * (base["accuracy"] - r["accuracy"])
        r.setdefault("measured_speedup", 1.0)
        r["mac_reduction"] = base["macs"] / r["macs"]
    shown = best or max(rows[1:], key=lambda r: r["val_accuracy"])
    if args.img_dir is not None:
        mean_img = train[0].mean(0).reshape(28, 28).numpy()
        feat.kept_pixels_image(
            shown["kept"], (28, 28), args.img_dir / f"features_kept_pixels{args.suffix}.png",
            background=mean_img, title=f"kept {shown['pixels_kept']}/784 pixels, "
            f"λ={shown['lam']:g}, drop {shown['accuracy_drop_pt']:.2f} pt")
    target = {"pixels_removed_fraction": shown.get("pixels_removed_fraction"),
              "accuracy_drop_pt": shown["accuracy_drop_pt"],
              "met": best is not None and best["pixels_removed_fraction"] >= 0.5}
    return {"rows": rows, "shown_lam": shown["lam"], "target": target}


# ---------------------------------------------------------------- SE gates
def _gate_l1(model, mu):
    """The loss plus ``μ·Σ_blocks mean(g / max_c g)``: an L1 push on each gate relative to
    the most open gate of its block (BatchNorm after the block makes the absolute scale of
    the gates free, so a plain L1 only lowers all of them together)."""
    def step_loss(out, y):
        gates = [m.last_gate.flatten(1) for m in model.modules() if isinstance(m, SE)]
        rel = sum((g / g.max(1, keepdim=True).values.detach()).mean() for g in gates)
        return nn.functional.cross_entropy(out, y) + mu * rel
    return step_loss


def _train_se(model, train, args, mu):
    """Adam; the excite layers learn ``--se-lr-mult`` times faster (a gate needs its bias
    to move by several units to close, which a few epochs at 1e-3 cannot do)."""
    gate = [p for m in model.modules() if isinstance(m, SE) for p in m.excite.parameters()]
    ids = {id(p) for p in gate}
    rest = [p for p in model.parameters() if id(p) not in ids]
    opt = torch.optim.Adam([{"params": rest}, {"params": gate, "lr": 1e-3 * args.se_lr_mult}],
                           lr=1e-3)
    loss_fn = _gate_l1(model, mu)
    x, y = train
    gen = harness.generator(args.seed)
    for _ in range(args.se_epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(128):
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
    for m in model.modules():
        if isinstance(m, SE):
            m.last_gate = None  # a graph tensor would block deepcopy


RULES = [(False, 0.05), (True, 0.1), (True, 0.2)]  # (relative, threshold)


def se_gates(data: harness.Splits, x_lat, args) -> dict:
    out = {}
    train = data.train
    calib = list(train[0][: args.calib].split(256))
    variants = [("plain", 0.0)] + [(f"relative gate L1 μ={mu:g}", mu) for mu in args.gate_l1]
    for variant, mu in variants[1:] if args.smoke else variants:
        harness.seed_all(args.seed)
        dense = se_cnn()
        _train_se(dense, train, args, mu)
        base = measure(dense, data, f"se {variant} dense", x_lat, args,
                       method=f"SE-CNN ({variant})")
        rows = []
        for relative, threshold in RULES[:1 if args.smoke else None]:
            for compensate in (True, False):
                model = copy.deepcopy(dense)
                res = se.prune_se(model, x_lat[:2], batches=calib, threshold=threshold,
                                  consistency=args.consistency, compensate=compensate,
                                  relative=relative)
                removed = sum(len(v) for v in res.plan.removed.values())
                row = measure(model, data, f"se {variant} t={threshold} rel={relative} "
                              f"comp={compensate}", x_lat, args, ref=dense,
                              threshold=threshold, relative=relative, compensate=compensate,
                              channels_removed=removed, removed=res.plan.removed)
                row["accuracy_drop_pt"] = 100 * (base["accuracy"] - row["accuracy"])
                row["mac_reduction"] = base["macs"] / row["macs"]
                rows.append(row)
                console.log(f"[se {variant}] t={threshold} rel={relative} comp={compensate}: "
                            f"removed "
                            f"{removed} channels, acc {row['accuracy']:.4f} "
                            f"(dense {base['accuracy']:.4f})")
        stats = se.gate_stats(dense, calib, 0.1, relative=True)
        out[variant] = {"dense": base, "rows": rows, "summary": stats.summary(args.consistency),
                        "gate_mean": {k: v["mean"] for k, v in stats.blocks.items()},
                        "gate_below": {k: v["below"] for k, v in stats.blocks.items()}}
        if mu == args.gate_l1[0] and args.img_dir is not None:
            _plot_gates(stats, args, variant)
    out["target"] = se_target(out)
    return out


def se_target(out: dict) -> dict:
    """Worst accuracy drop (pt, before fine-tuning) per removal rule, over the variants
    where the rule removed something; the target is judged on the default rule of
    ``prune_se`` (relative, threshold 0.1, compensated)."""
    worst: dict[str, float] = {}
    for name, v in out.items():
        if name == "target":
            continue
        for r in v["rows"]:
            if r["channels_removed"] > 0:
                key = (f"{'relative' if r['relative'] else 'absolute'} t={r['threshold']:g}"
                       f"{', compensated' if r['compensate'] else ''}")
                worst[key] = max(worst.get(key, -1e9), r["accuracy_drop_pt"])
    default = worst.get("relative t=0.1, compensated")
    return {"worst_drop_pt_by_rule": worst, "default_rule": "relative t=0.1, compensated",
            "max_drop_pt_default_rule": default, "met": default is not None and default <= 0.5}


def _plot_gates(stats, args, variant):
    plt = plots.pyplot()
    names = list(stats.blocks)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3))
    for ax, n in zip(axes, names):
        st = stats.blocks[n]
        order = sorted(range(len(st["mean"])), key=lambda c: st["mean"][c])
        ax.fill_between(range(len(order)), [st["q05"][c] for c in order],
                        [st["q95"][c] for c in order], alpha=0.3, label="5–95 %")
        ax.plot([st["mean"][c] for c in order], label="mean")
        ax.plot([st["below"][c] for c in order], "r.", ms=3,
                label=f"P(g/max g < {stats.threshold:g})")
        ax.set_title(f"{stats.se[n].name} ({len(order)} ch.)", fontsize=9)
        ax.set_xlabel("channel (sorted by mean gate)")
    axes[0].set_ylabel("gate value / fraction")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"SE gate statistics, {variant}", fontsize=10)
    plots.save(fig, args.img_dir / f"se_gate_stats{args.suffix}.png")


# ---------------------------------------------------------------- low rank
def _group_lasso(dense, train, x_lat, args):
    from prunekit.graph import build_groups

    model = copy.deepcopy(dense)
    gs = build_groups(model, x_lat[:2])
    sgd = torch.optim.SGD(model.parameters(), lr=args.prox_lr, momentum=0.9)
    opt = ProximalGroupLasso(sgd, model, gs, lam=1e-4, example_inputs=x_lat[:2],
                             budget=Budget(args.param_fraction, "params", dual_lr=0.02))
    fit(model, train, cfg(args, args.prox_epochs), optimizer=opt)
    opt.finalize(x_lat[:2])
    return model


def _ranks_for_budget(model, budget_params):
    """Ranks per layer (global relative-σ threshold) so the factored model has at most
    ``budget_params`` parameters (a layer stays dense where factoring is not cheaper)."""
    from prunekit.measure import count_params

    layers = lr.find_lowrank(model)
    mods = dict(model.named_modules())
    svals = {u.name: torch.linalg.svdvals(mods[u.name].weight.detach().double()) for u in layers}
    other = count_params(model) - sum(mods[u.name].weight.numel() for u in layers)

    def params_at(t):
        total, ranks = other, {}
        for u in layers:
            s = svals[u.name]
            r = max(1, int((s > t * s[0]).sum()))
            w = mods[u.name].weight
            n, out = w[0].numel(), w.shape[0]
            if r * (n + out) < out * n:
                total += r * (n + out)
                ranks[u.name] = r
            else:
                total += out * n
        return total, ranks

    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if params_at(mid)[0] > budget_params else (lo, mid)
    return params_at(hi)[1]


@torch.no_grad()
def _truncate(model, ranks):
    from prunekit.structures._lowrank_factor import truncated

    for name, r in ranks.items():
        m = model.get_submodule(name)
        m.weight.copy_(truncated(m, r))


def lowrank(data: harness.Splits, x_lat, args) -> dict:
    train = data.train
    harness.seed_all(args.seed)
    dense = lenet300()
    fit(dense, train, cfg(args, args.epochs))
    rows = [measure(dense, data, "lowrank dense", x_lat, args, method="dense")]
    gl = _group_lasso(dense, train, x_lat, args)
    fit(gl, train, cfg(args, args.finetune_epochs))
    rows.append(measure(gl, data, "lowrank group lasso", x_lat, args, ref=dense,
                        method="group lasso alone (neurons)",
                        val_accuracy=evaluate(gl, data.val)))
    budget = rows[-1]["params"]
    console.log(f"[lowrank] group lasso: {budget} params, acc {rows[-1]['accuracy']:.4f}")
    for lam in args.lowrank_lams:
        model = copy.deepcopy(dense)
        adam = torch.optim.Adam(model.parameters(), lr=1e-3)
        opt = lr.LowRankProx(adam, model, lam=lam, nuclear_ratio=args.nuclear_ratio)
        fit(model, train, cfg(args, args.prox_epochs), optimizer=opt)
        ranks_after_prox = opt.ranks()
        ranks = _ranks_for_budget(model, budget)
        _truncate(model, ranks)
        gated = copy.deepcopy(model)  # (c): factor only where the layer is measured faster
        res_gated = lr.factorize(gated, x_lat, threads=1, repeats=args.repeats,
                                 warmup=2 if args.smoke else 5)
        forced = {n: r for n, r in ranks.items() if n not in res_gated.plan.layers}
        rows.append(measure(gated, data, f"lowrank λ={lam:g} latency-gated", x_lat, args,
                            ref=dense, lam=lam,
                            method="hybrid, factored where measured faster (no fine-tune)",
                            factored=res_gated.plan.layers, kept_dense_by_latency=forced,
                            factorize_rows=res_gated.rows))
        res = lr.factorize(model, x_lat, measure=False)  # every cheaper layer: params match
        acc_ft0 = data.evaluate(f"lowrank λ={lam:g} before fine-tuning",
                                partial(evaluate, model))
        fit(model, train, cfg(args, args.finetune_epochs))
        row = measure(model, data, f"lowrank λ={lam:g}", x_lat, args, ref=dense,
                      method="Frobenius+nuclear hybrid, factored", lam=lam,
                      nuclear_ratio=args.nuclear_ratio, ranks_after_prox=ranks_after_prox,
                      ranks=ranks, factored=res.plan.layers, accuracy_before_finetune=acc_ft0,
                      val_accuracy=evaluate(model, data.val))
        rows.append(row)
        console.log(f"[lowrank] λ={lam:g}: ranks {ranks}, {row['params']} params, acc "
                    f"{row['accuracy']:.4f}; latency gate kept dense: {list(forced)}")
    base = rows[0]
    for r in rows:
        r.setdefault("measured_speedup", 1.0)
        r["mac_reduction"] = base["macs"] / r["macs"]
    gl_row = rows[1]
    matched = [r for r in rows[2:] if r["method"].endswith("factored")
               and r["params"] <= gl_row["params"] * 1.02]
    best = max(matched, key=lambda r: r["val_accuracy"], default=None)  # chosen on val
    return {"rows": rows, "target": {
        "group_lasso_accuracy": gl_row["accuracy"],
        "hybrid_accuracy_at_matched_params": best["accuracy"] if best else None,
        "hybrid_chosen_lam_on_val": best["lam"] if best else None,
        "met": best is not None and best["accuracy"] >= gl_row["accuracy"]}}


# ---------------------------------------------------------------- plots, main
def _plot_features(res, args):
    plt = plots.pyplot()
    rows = res["rows"]
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot([r["pixels_kept"] for r in rows[1:]], [100 * r["accuracy"] for r in rows[1:]], "o-",
            label=f"proximal GL on pixels, refit {args.finetune_epochs} ep.")
    ax.axhline(100 * rows[0]["accuracy"], color="k", ls="--", lw=0.8, label="dense (784)")
    ax.axhline(100 * rows[0]["accuracy"] - 1, color="r", ls=":", lw=0.8, label="dense − 1 pt")
    ax.axvline(392, color="gray", ls=":", lw=0.8)
    ax.set_xlabel("pixels kept")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=7)
    plots.save(fig, args.img_dir / f"features_accuracy{args.suffix}.png")


def _plot_lowrank(res, args):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for r in res["rows"]:
        label = r["method"] + (f" λ={r['lam']:g}" if "lam" in r else "")
        ax.scatter(r["params"] / 1e3, 100 * r["accuracy"], label=label)
    ax.set_xlabel("parameters (thousands)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(args.img_dir / f"lowrank_vs_group_lasso{args.suffix}.png", dpi=110)
    plt.close(fig)


def parse(argv=None):
    p = harness.parser("structures_features", __doc__, smoke_help="synthetic data, seconds")
    p.add_argument("--train-size", type=int, default=15000)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--se-epochs", type=int, default=3)
    p.add_argument("--se-lr-mult", type=float, default=10.0)
    p.add_argument("--prox-epochs", type=int, default=2)
    p.add_argument("--finetune-epochs", type=int, default=2)
    p.add_argument("--prox-lr", type=float, default=0.05)
    p.add_argument("--feature-lams", type=float, nargs="+", default=[0.5, 0.7, 0.85, 1.0])
    p.add_argument("--lowrank-lams", type=float, nargs="+", default=[0.3, 1.0])
    p.add_argument("--nuclear-ratio", type=float, default=0.9)
    p.add_argument("--param-fraction", type=float, default=0.1)
    p.add_argument("--consistency", type=float, default=0.95)
    p.add_argument("--gate-l1", type=float, nargs="+", default=[0.1, 0.3])
    p.add_argument("--calib", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=10, help="timed passes per round")
    p.add_argument("--rounds", type=int, default=4, help="paired ABBA rounds")
    p.add_argument("--only", nargs="+", default=["features", "se", "lowrank"])
    p.add_operational("--progress", action="store_true")
    args = p.parse(argv)
    if args.smoke:
        args.epochs = args.prox_epochs = args.finetune_epochs = args.se_epochs = 1
        args.feature_lams, args.lowrank_lams = [30.0], [1.0]
        args.calib, args.repeats, args.rounds = 128, 2, 2
    args.suffix = "_smoke" if args.smoke else ""
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    with harness.session(args) as rec:
        data = harness.fashion_mnist(args.train_size, args.seed, args.smoke)
        x_lat = data.val[0][:64]
        t0 = time.time()
        results: dict = {}
        if "features" in args.only:
            results["input_feature"] = features(data, x_lat, args)
            if args.img_dir is not None:
                _plot_features(results["input_feature"], args)
        if "se" in args.only:
            results["se_gate"] = se_gates(data, x_lat, args)
        if "lowrank" in args.only:
            results["lowrank"] = lowrank(data, x_lat, args)
            if args.img_dir is not None:
                _plot_lowrank(results["lowrank"], args)
        results["wall_s"] = time.time() - t0
        out = rec.write(harness.out_path(args), results, splits=data)
    console.log(f"wrote {out} in {results['wall_s']:.0f} s")
    return results


if __name__ == "__main__":
    main()
