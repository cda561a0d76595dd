"""One-shot structured pruning without gradient training: selection and reconstruction.

Fashion-MNIST CNNs (LeNet-5 of ``training_methods.py``, the VGG CNN of
``training_vgg.py``), cut to ``--targets`` MAC fractions in one shot — no fine-tuning —
by every method on the *same* calibration images (``--calib`` from the dense model's
training split):

* prunekit ``l2`` / ``taylor`` / ``obs`` selection, cut as is;
* prunekit ``l2`` (and ``obs``) + reconstruction: ``bias`` compensation, ``ls`` (layer-wise
  damped least squares), ``block`` (least squares + Adam on each conv/FFN segment with its
  nonlinearity) — :mod:`prunekit.reconstruct`;
* Torch-Pruning magnitude and Taylor (gradients on the calibration images), uniform ratio
  bisected to the MACs prunekit reached.

Hyper-parameters (ridge damping; Adam learning rate of ``block``) are chosen on a
validation split carved from the training set (images the dense model never saw); the
test set is read once per reported number (the chosen configuration of every method).
Cost: wall time of calibration + reconstruction and the largest Gram matrix held,
against the model size.

Usage::

    nice -n 10 .venv/bin/python benchmarks/oneshot.py --seeds 0 1 2 3 4        # LeNet-5
    nice -n 10 .venv/bin/python benchmarks/oneshot.py --model vgg --seeds 0
    .venv/bin/python benchmarks/oneshot.py --smoke                               # seconds

Writes ``benchmarks/results/oneshot[_smoke]_<model>[_TAG].json`` with the exact command and
git commit. Self-contained (argparse + JSON); dense models come from the cache that
``training_methods.py`` / ``training_vgg.py`` write (trained here if missing).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "benchmarks") not in sys.path:  # appended: never shadows an installed package
    sys.path.append(str(ROOT / "benchmarks"))
import training_methods as tm  # noqa: E402

import prunekit  # noqa: E402
from prunekit.importance import ImportanceContext  # noqa: E402
from prunekit.measure import count_macs  # noqa: E402
from prunekit.methods import evaluate  # noqa: E402
from prunekit.reconstruct import ReconstructConfig, reconstruct  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
console = Console(width=160)
Split = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class ModelSpec:
    """A benchmark model: builder and the dense training recipe of its own benchmark."""

    build: Callable[[], nn.Module]
    train_size: int
    epochs: int
    key: Callable[[int, int, int], str]


def _vgg() -> nn.Module:
    import training_vgg

    return training_vgg.vgg_cnn()


MODELS = {
    "lenet5": ModelSpec(tm.lenet5, 15000, 10, lambda s, n, e: f"lenet5_s{s}_n{n}_e{e}_lr0.001"),
    "vgg": ModelSpec(_vgg, 6000, 4, lambda s, n, e: f"vggc_32-32-64-64-128-128_256_s{s}_n{n}"
                                                    f"_e{e}_lr0.001"),
}


# ---------------------------------------------------------------- data and dense model
def splits(args, seed: int) -> tuple[Split, Split, Split, Split]:
    """``(train, calibration, validation, test)``: a seeded permutation of the 60k training
    images; train = its first ``train_size`` (what the dense model saw, the same images
    as ``fashion_mnist_subset``), calibration = the first ``--calib`` of those, validation =
    ``--val`` images after position 20,000 (never trained on)."""
    from prunekit.data import load_fashion_mnist, synthetic_fashion

    spec = MODELS[args.model]
    if args.smoke:
        (xtr, ytr), test = synthetic_fashion(512, 128, seed=seed)
        return (xtr[:256], ytr[:256]), (xtr[:args.calib], ytr[:args.calib]), \
            (xtr[256:], ytr[256:]), test
    xtr, ytr, xte, yte = load_fashion_mnist()
    idx = torch.randperm(len(ytr), generator=torch.Generator().manual_seed(seed))
    train = idx[:spec.train_size]
    val = idx[20000:20000 + args.val]
    return (xtr[train], ytr[train]), (xtr[train[:args.calib]], ytr[train[:args.calib]]), \
        (xtr[val], ytr[val]), (xte, yte)


def dense_model(args, seed: int, train: Split) -> nn.Module:
    spec = MODELS[args.model]
    torch.manual_seed(seed)
    model = spec.build()
    epochs = 1 if args.smoke else spec.epochs
    cache = argparse.Namespace(dense_cache=args.dense_cache, smoke=args.smoke,
                               dense_epochs=epochs, lr=1e-3, seed=seed, progress=False)
    return tm.train_cached(model, spec.key(seed, len(train[1]), epochs), train, cache).eval()


# ---------------------------------------------------------------- methods
def context(calib: Split, args, labels: bool) -> ImportanceContext:
    """The calibration images in ``--batch`` batches (with labels and cross-entropy for
    gradient criteria)."""
    xs, ys = calib[0].split(args.batch), calib[1].split(args.batch)
    if labels:
        return ImportanceContext(batches=list(zip(xs, ys, strict=True)), n_batches=len(xs),
                                 loss_fn=nn.CrossEntropyLoss())
    return ImportanceContext(batches=list(xs), n_batches=len(xs))


@dataclass
class Candidate:
    """A pruned model, its selection settings and cost."""

    model: nn.Module
    settings: dict[str, Any]
    seconds: float
    cpu_seconds: float
    reconstruction: list[dict] | None = None
    gram_bytes: int = 0


def prunekit_cut(dense, calib, x1, target, importance, args) -> tuple[Any, float]:
    model = copy.deepcopy(dense)
    ctx = context(calib, args, labels=importance == "taylor")
    t0, c0 = time.perf_counter(), time.process_time()
    res = prunekit.prune(model, x1, target_macs=target, importance=importance, calibration=ctx)
    return res, (time.perf_counter() - t0, time.process_time() - c0)


def reconstructed(dense, res, seconds, calib, cfg, args) -> Candidate:
    model = copy.deepcopy(res.model)
    t0, c0 = time.perf_counter(), time.process_time()
    reports = reconstruct(dense, model, res.plan, context(calib, args, labels=False), cfg)
    spent = (time.perf_counter() - t0, time.process_time() - c0)
    settings = {"mode": cfg.mode, "damping": cfg.damping}
    if cfg.mode == "block":
        settings |= {"lr": cfg.lr, "steps": cfg.steps}
    return Candidate(model, settings, seconds[0] + spent[0], seconds[1] + spent[1],
                     [r.to_dict() for r in reports], _gram_bytes(model, reports))


def _gram_bytes(model: nn.Module, reports) -> int:
    """Bytes of the largest Gram system held (float64 ``G`` and ``C`` of one layer)."""
    from prunekit.importance.linear_forms import form_of

    most = 0
    for r in reports:
        r = r if isinstance(r, dict) else r.to_dict()
        if r["method"] != "ls":   # bias compensation holds O(out) sums only
            continue
        form = form_of(model.get_submodule(r["layer"]))
        k = form.weight().shape[1] + 1
        out = form.weight().shape[0] // form.groups
        most = max(most, 8 * form.groups * (k * k + out * k))
    return most


def torch_pruning(dense, calib, x1, macs_goal, kind, args) -> Candidate:
    """Torch-Pruning (uniform ratio, last layer kept) bisected to ``macs_goal``."""
    import torch_pruning as tp

    def cut(ratio: float) -> nn.Module:
        model = copy.deepcopy(dense)
        if kind == "taylor":
            imp = tp.importance.GroupTaylorImportance()
            model.zero_grad()
            for xb, yb in zip(calib[0].split(args.batch), calib[1].split(args.batch),
                              strict=True):
                nn.functional.cross_entropy(model(xb), yb).backward()
        else:
            imp = tp.importance.GroupMagnitudeImportance(p=2)
        pruner = tp.pruner.BasePruner(model, x1, importance=imp, pruning_ratio=ratio,
                                      ignored_layers=[model[-1]])
        pruner.step()
        model.zero_grad(set_to_none=True)
        return model.eval()

    t0, c0 = time.perf_counter(), time.process_time()
    lo, hi = 0.0, 0.99
    for _ in range(4 if args.smoke else 12):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count_macs(cut(mid), x1) > macs_goal else (lo, mid)
    return Candidate(cut(hi), {"ratio": round(hi, 4)}, time.perf_counter() - t0,
                     time.process_time() - c0)


# ---------------------------------------------------------------- one seed
def run_seed(args, seed: int) -> list[dict]:
    train, calib, val, test = splits(args, seed)
    dense = dense_model(args, seed, train)
    x1 = calib[0][:1]
    macs0 = count_macs(dense, x1)
    size = sum(p.numel() * p.element_size() for p in dense.parameters())
    rows = [{"seed": seed, "target": 1.0, "method": "dense", "val": evaluate(dense, val),
             "test": evaluate(dense, test), "mac_reduction": 1.0, "model_bytes": size}]
    for target in args.targets:
        cuts: dict[str, tuple[Any, float]] = {}
        for name in args.methods:
            cands = candidates(name, dense, calib, x1, target, cuts, args)
            if not cands:
                continue
            scored = [(evaluate(c.model, val), c) for c in cands]
            best_val, best = max(scored, key=lambda s: s[0])
            row = {"seed": seed, "target": target, "method": name, "val": best_val,
                   "test": evaluate(best.model, test),     # the test set, read once
                   "mac_reduction": macs0 / count_macs(best.model, x1),
                   "settings": best.settings, "seconds": best.seconds,
                   "cpu_seconds": best.cpu_seconds,
                   "candidates": [{"settings": c.settings, "val": v} for v, c in scored],
                   "gram_bytes": best.gram_bytes, "model_bytes": size,
                   "reconstruction": best.reconstruction}
            rows.append(row)
            console.log(f"seed {seed} target {target} {name:24s} val {best_val:.4f} test "
                        f"{row['test']:.4f} ({row['mac_reduction']:.2f}x, {best.settings}, "
                        f"{best.cpu_seconds:.1f} CPU s)")
    return rows


def candidates(name: str, dense, calib, x1, target, cuts, args) -> list[Candidate]:
    """Every configuration of method ``name`` (the validation split picks one)."""
    if name.startswith("tp_"):
        goal = count_macs(_cut_for(cuts, "l2", dense, calib, x1, target, args)[0].model, x1)
        return [torch_pruning(dense, calib, x1, goal, name[3:], args)]
    importance, _, mode = name.partition("+")
    res, seconds = _cut_for(cuts, importance, dense, calib, x1, target, args)
    if not mode:
        return [Candidate(copy.deepcopy(res.model), {}, *seconds)]
    if mode == "block":
        return [reconstructed(dense, res, seconds, calib,
                              ReconstructConfig(mode="block", damping=d, steps=args.steps,
                                                lr=lr), args)
                for d in args.block_damping for lr in args.block_lr]
    return [reconstructed(dense, res, seconds, calib, ReconstructConfig(mode=mode, damping=d),
                          args) for d in (args.damping if mode == "ls" else [0.0])]


def _cut_for(cuts, importance, dense, calib, x1, target, args) -> tuple[Any, float]:
    if importance not in cuts:
        cuts[importance] = prunekit_cut(dense, calib, x1, target, importance, args)
    return cuts[importance]


# ---------------------------------------------------------------- MiniLM
def run_minilm(args) -> list[dict]:
    """all-MiniLM-L6-v2, width cuts of ``--shapes`` (layers, heads, FFN units removed per
    layer) at the measured speedup they reach: selection by ``--criteria``, then no
    reconstruction / bias / least squares, on ``--calib`` texts of WordNet distillation
    text (unlabeled; length-sorted batches of 32, 64 tokens). The damping is chosen on the
    mean cosine to the dense embeddings of ``--val`` *other* distillation texts; Recall@1
    on the standard 2,000 nouns (the test) is read once per reported number."""
    import os

    import minilm as mb

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    margs = mb.parse_args(["--smoke"] if args.smoke else ["--no-torch-pruning"])
    margs.threads = args.threads
    setup = mb.load_setup(margs)
    texts = sorted(setup.data.extra_text[:args.calib], key=len)
    calib = [mb.tokenize(setup.tokenizer, texts[i:i + 32], margs.seq)
             for i in range(0, len(texts), 32)]
    setup.calib = calib
    held = setup.data.extra_text[args.calib:args.calib + args.val]
    dense = mb.wordnet_retrieval(setup.dense, setup.tokenizer, setup.data, max_length=margs.seq)
    ref = dense.embeddings
    rows = [{"method": "dense", "test": dense.recall_at_1, "shape": [0, 0, 0]}]
    for shape in args.shapes:
        for criterion in args.criteria:
            model, plan, cut_s = _minilm_cut(setup, shape, criterion)
            dense_ms, ms = mb.measure_pair(setup.dense, model, setup)
            for mode in args.modes:
                rows.append(_minilm_row(setup, model, plan, shape, criterion, mode, held,
                                        ref, cut_s, args, dense_ms / ms))
                r = rows[-1]
                console.log(f"{shape} {r['method']:10s} {speedup_note(r)} val cos "
                            f"{r['val_cosine']:.4f} R@1 {r['test']:.4f} (damping "
                            f"{r['damping']}, {r['reconstruct_cpu_s']:.0f} CPU s)")
    return rows


def speedup_note(row: dict) -> str:
    return f"{row['measured_speedup']:.2f}x measured"


def _minilm_cut(setup, shape, criterion: str) -> tuple[nn.Module, Any, float]:
    """Heads and FFN units removed per layer (the lowest ``criterion`` scores, scored on
    the calibration text), as ``minilm.py``'s width cut does; the plan too."""
    from prunekit.graph import build_groups
    from prunekit.importance import get
    from prunekit.surgery import remove_channels

    _, heads, ffn = shape
    model = copy.deepcopy(setup.dense)
    ex = setup.calib[0]
    t0 = time.perf_counter()
    gs = build_groups(model, ex)
    ctx = ImportanceContext(example_inputs=ex, batches=setup.calib, n_batches=len(setup.calib))
    removal = {}
    for g in gs.groups:
        k = heads if g.id.endswith("attention.self.query") else (
            ffn if g.id.endswith("intermediate.dense") else 0)
        if k:
            removal[g.id] = torch.argsort(get(criterion)(model, g, ctx))[:k].tolist()
    plan = remove_channels(model, gs, removal, ex)
    return model, plan, time.perf_counter() - t0


def _cosine(setup, model: nn.Module, texts: list[str]) -> float:
    """Mean cosine between ``model``'s and the dense model's embeddings of ``texts``."""
    from prunekit.eval.embed import embed_texts

    key = id(texts)
    if key not in _DENSE_EMB:
        _DENSE_EMB[key] = embed_texts(setup.dense, setup.tokenizer, texts)
    emb = embed_texts(model, setup.tokenizer, texts)
    return float((emb * _DENSE_EMB[key]).sum(1).mean())


_DENSE_EMB: dict[int, torch.Tensor] = {}


def _minilm_row(setup, cut_model, plan, shape, criterion, mode, held, ref, cut_s, args,
                speedup) -> dict:
    import minilm as mb

    ctx = ImportanceContext(batches=setup.calib, n_batches=len(setup.calib))
    base, _, layers = mode.partition("_")   # "ls_all": every layer from the first consumer
    grid = args.damping if base == "ls" else args.block_damping if base == "block" else [0.0]
    scored = []
    for d in grid if mode != "none" else [None]:
        model = copy.deepcopy(cut_model)
        t0, c0 = time.perf_counter(), time.process_time()
        cfg = ReconstructConfig(mode=base, damping=d or 0.0, layers=layers or "consumers",
                                steps=args.steps, lr=args.block_lr[0])
        reports = [] if d is None else [
            r.to_dict() for r in reconstruct(setup.dense, model, plan, ctx, cfg)]
        cost = (time.perf_counter() - t0, time.process_time() - c0)
        scored.append((_cosine(setup, model, held), d, model, reports, cost))
    val, d, model, reports, cost = max(scored, key=lambda s: s[0])
    test = mb.evaluate(model, setup, ref)
    return {"method": criterion if mode == "none" else f"{criterion}+{mode}",
            "shape": list(shape), "measured_speedup": speedup, "val_cosine": val,
            "damping": d, "test": test["recall_at_1"], "test_cosine": test["mean_cosine"],
            "cut_s": cut_s, "reconstruct_s": cost[0], "reconstruct_cpu_s": cost[1],
            "gram_bytes": _gram_bytes(model, reports),
            "model_bytes": sum(p.numel() * p.element_size() for p in setup.dense.parameters()),
            "candidates": [{"damping": c[1], "val_cosine": c[0]} for c in scored],
            "reconstruction": reports}


# ---------------------------------------------------------------- summary and output
def summarize(rows: list[dict]) -> list[dict]:
    """Mean, standard error and n of test accuracy per (target, method)."""
    keys = sorted({(r["target"], r["method"]) for r in rows}, key=lambda k: (-k[0], k[1]))
    out = []
    for target, method in keys:
        acc = [r["test"] for r in rows if r["target"] == target and r["method"] == method]
        sec = [r.get("cpu_seconds", 0.0) for r in rows if r["target"] == target
               and r["method"] == method]
        se = statistics.stdev(acc) / len(acc) ** 0.5 if len(acc) > 1 else float("nan")
        out.append({"target": target, "method": method, "n": len(acc),
                    "test_mean": statistics.fmean(acc), "test_se": se,
                    "cpu_seconds_mean": statistics.fmean(sec)})
    return out


PAIRS = [("l2+ls", "l2"), ("l2+ls", "tp_magnitude"), ("l2+ls", "tp_taylor"),
         ("obs", "l2"), ("obs+ls", "l2+ls"), ("l2+block", "l2+ls"), ("l2+bias", "l2"),
         ("fluctuation+bias", "l2+bias")]


def compare(rows: list[dict], a: str, b: str) -> list[dict]:
    """Paired test-accuracy difference ``a − b`` over seeds per target: mean, SE and the
    verdict (``ahead``/``behind`` when |mean| > 2 SE with at least 5 seeds, else ``tie``)."""
    out = []
    for target in sorted({r["target"] for r in rows if r["method"] == a}, reverse=True):
        acc = {m: {r["seed"]: r["test"] for r in rows if r["method"] == m
                   and r["target"] == target} for m in (a, b)}
        seeds = sorted(set(acc[a]) & set(acc[b]))
        if not seeds:
            continue
        d = [acc[a][s] - acc[b][s] for s in seeds]
        mean = statistics.fmean(d)
        se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else float("nan")
        verdict = ("ahead" if mean > 2 * se else "behind" if mean < -2 * se else "tie") \
            if len(d) >= 5 else "tie (fewer than 5 seeds)"
        out.append({"target": target, "a": a, "b": b, "n": len(d), "delta_mean": mean,
                    "delta_se": se, "verdict": verdict})
    return out


def merge(paths: list[Path], args) -> dict:
    """Rows of several per-seed result files in one summary (``--merge``)."""
    runs = [json.loads(p.read_text()) for p in paths]
    rows = [r for run in runs for r in run["rows"]]
    summary = summarize(rows)
    print_table(summary)
    pairs = [c for a, b in PAIRS for c in compare(rows, a, b)]
    for c in pairs:
        console.print(f"{c['target']:g}: {c['a']} - {c['b']}: {100 * c['delta_mean']:+.2f} ± "
                      f"{100 * c['delta_se']:.2f} pt over {c['n']} seeds: {c['verdict']}")
    return {"merged": [str(p) for p in paths], "commits": sorted({r["commit"] for r in runs}),
            "commands": [r["command"] for r in runs], "summary": summary, "pairs": pairs,
            "rows": rows}


def print_table(summary: list[dict]) -> None:
    table = Table(title="one-shot, no gradient training: test accuracy (mean ± SE over seeds)")
    for col in ("MACs kept", "method", "n", "test acc", "CPU s"):
        table.add_column(col)
    for s in summary:
        table.add_row(f"{s['target']:g}", s["method"], str(s["n"]),
                      f"{100 * s['test_mean']:.2f} ± {100 * s['test_se']:.2f}",
                      f"{s['cpu_seconds_mean']:.1f}")
    console.print(table)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="synthetic data, seconds")
    p.add_argument("--model", choices=[*MODELS, "minilm"], default="lenet5")
    p.add_argument("--shapes", type=lambda t: [int(v) for v in t.split(",")], nargs="+",
                   default=[[0, 0, 832], [0, 5, 576]],
                   help="minilm: layers,heads,ffn units removed per layer (1.5x measured "
                        "in minilm_width_*_1.5x.json)")
    p.add_argument("--criteria", nargs="+", default=["l2", "obs"], help="minilm selection")
    p.add_argument("--modes", nargs="+", default=["none", "bias", "ls"],
                   help="minilm reconstruction modes: none, bias, ls, ls_all (every layer "
                        "from the first consumer), block")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--targets", type=float, nargs="+", default=[0.25, 0.125],
                   help="MAC fractions to keep (0.25: 4x fewer MACs)")
    p.add_argument("--calib", type=int, default=1024, help="calibration images (all methods)")
    p.add_argument("--val", type=int, default=5000, help="validation images (selection)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--methods", nargs="+", default=[
        "l2", "taylor", "obs", "l2+bias", "l2+ls", "obs+ls", "l2+block", "tp_magnitude",
        "tp_taylor"])
    p.add_argument("--damping", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1],
                   help="ridge damping grid of ls (chosen on validation)")
    p.add_argument("--block-damping", type=float, nargs="+", default=[1e-2])
    p.add_argument("--block-lr", type=float, nargs="+", default=[1e-4, 1e-3])
    p.add_argument("--steps", type=int, default=200, help="Adam steps per block segment")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dense-cache", type=Path,
                   default=Path.home() / ".cache" / "prunekit" / "bench")
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument("--tag", default="")
    p.add_argument("--merge", type=Path, nargs="+", default=None,
                   help="only merge these per-seed result files into one summary")
    args = p.parse_args(argv)
    if args.smoke and args.model == "minilm":
        args.calib, args.val, args.damping = 64, 32, args.damping[:1]
        args.shapes = [[0, 1, 64]]
    elif args.smoke:
        args.calib, args.val, args.batch, args.steps = 64, 128, 32, 5
        args.targets, args.damping, args.block_lr = args.targets[:1], args.damping[:1], [1e-3]
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    if args.merge:
        result = merge(args.merge, args)
        return _write(result, args, "oneshot" + f"_{args.model}" +
                      (f"_{args.tag}" if args.tag else ""))
    before = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    try:
        if args.model == "minilm":
            rows = run_minilm(args)
        else:
            rows = [r for seed in args.seeds for r in run_seed(args, seed)]
    finally:
        torch.set_num_threads(before)
    summary = [] if args.model == "minilm" else summarize(rows)
    if summary:
        print_table(summary)
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
              "argv": list(sys.argv if argv is None else argv), "commit": _commit(),
              "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "wall_s": time.time() - t0, "summary": summary, "rows": rows}
    from prunekit.measure.machine import machine_info

    result["machine"] = machine_info()
    name = "oneshot" + ("_smoke" if args.smoke else "") + f"_{args.model}" + \
        (f"_{args.tag}" if args.tag else "")
    return _write(result, args, name)


def _write(result: dict, args, name: str) -> dict:
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"{name}.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    console.print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
