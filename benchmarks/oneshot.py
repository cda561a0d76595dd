"""One-shot structured pruning without gradient training: selection and reconstruction.

Fashion-MNIST CNNs (LeNet-5 of ``training_methods.py``, the VGG CNN of
``training_vgg.py``; the same cached dense models), cut to each ``--targets`` MAC fraction
in one shot — no fine-tuning — by every method of ``--methods`` on the **same
calibration images** (the first ``--calib`` of the dense model's training split; Taylor
criteria also use their labels, nothing else does):

* prunekit ``l2`` / ``taylor`` / ``obs`` / ``act_norm`` / ``fluctuation`` selection, cut
  as is;
* a selection + reconstruction (:mod:`prunekit.reconstruct`): ``+bias`` (bias
  compensation), ``+ls`` (layer-wise damped least squares; ``+ls_all``: every layer from
  the first consumer), ``+block`` (least squares, then Adam on each segment with its
  nonlinearity);
* Torch-Pruning magnitude and Taylor (``tp_magnitude``, ``tp_taylor``; gradients on the
  calibration images), uniform ratio bisected to at most the MACs prunekit ``l2`` reached.

Selection follows the harness rules. Every method is reported at its **documented
default** (comparison "defaults": nothing tuned, one configuration each; ``ls`` damping
0.01, ``block`` lr 1e-4) and the methods with a hyper-parameter also **tuned** (comparison
"tuned": ``ls`` damping from ``--damping``, ``block`` Adam lr from ``--block-lr``; grids of
equal size, chosen on the validation split carved from the training data, ties to the
more regularized value; a choice at a grid edge marks the file invalid). The test set is
read once per reported number. One seed per command; ``--combine`` pairs the seeds'
files (≥ 5 for a verdict).

``--model minilm``: all-MiniLM-L6-v2, per-layer width cuts of ``--shapes`` (layers,
heads, FFN units removed per layer), selection by ``--criteria`` and reconstruction by
``--modes`` on ``--calib`` distillation texts; damping chosen on the mean cosine to the
dense embeddings of ``--val`` *other* texts (one-standard-error rule: the most regularized
damping within one SE of the best); WordNet Recall@1 on the standard 2,000
nouns (the test) read once per reported configuration; speedup measured (paired ABBA).

Usage::

    nice -n 10 python benchmarks/oneshot.py --seed S        # S = 0..4, LeNet-5
    python benchmarks/oneshot.py --combine benchmarks/results/oneshot_lenet5_s{0,1,2,3,4}.json
    nice -n 10 python benchmarks/oneshot.py --model minilm --shapes 0,0,832
    python benchmarks/oneshot.py --smoke                    # seconds, synthetic data
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import record, tables  # noqa: E402
from benchmarks.harness.rules import Comparison, Method, RuleViolation, mean_se, verdict  # noqa: E402,E501
from prunekit.importance import ImportanceContext  # noqa: E402
from prunekit.measure import count_macs  # noqa: E402
from prunekit.methods import evaluate  # noqa: E402
from prunekit.reconstruct import ReconstructConfig, reconstruct  # noqa: E402

console = Console(width=160)
CORE = ["l2", "obs", "l2+ls", "obs+ls", "tp_magnitude", "tp_taylor"]
EXTRA = ["taylor", "l2+bias", "fluctuation+bias", "l2+block"]
DEFAULTS = {"ls": {"damping": 0.01}, "ls_all": {"damping": 0.01}, "block": {"lr": 1e-4},
            "bias": {}, "": {}}
# paired over seeds in --combine: (comparison, a, b) — a − b
PAIRS = [("defaults", "l2+ls", "l2"), ("defaults", "l2+ls", "tp_magnitude"),
         ("defaults", "l2+ls", "tp_taylor"), ("defaults", "obs+ls", "tp_taylor"),
         ("defaults", "obs", "l2"), ("defaults", "obs", "tp_taylor"),
         ("defaults", "l2+bias", "l2"), ("defaults", "fluctuation+bias", "l2+bias"),
         ("defaults", "obs+ls", "l2+ls"), ("tuned", "obs+ls", "l2+ls"),
         ("tuned", "l2+block", "l2+ls")]


@dataclass(frozen=True)
class CNN:
    """A benchmark CNN: its dense model (cached by its own benchmark) and data size."""

    dense: Callable[[harness.Splits, Any], nn.Module]
    train_size: int
    dense_epochs: int


def _lenet5(data, args) -> nn.Module:
    from benchmarks import training_methods as tm

    return tm.dense_model("lenet5", data, args)


def _vgg(data, args) -> nn.Module:
    from benchmarks import training_vgg as tv

    args.widths, args.hidden = tv.WIDTHS, 256
    return tv.dense_model(data, args)


CNNS = {"lenet5": CNN(_lenet5, 15000, 10), "vgg": CNN(_vgg, 6000, 7)}


@dataclass
class Candidate:
    """One configuration of one method: the pruned model, its validation score, cost."""

    model: nn.Module
    values: dict[str, Any]
    val: float
    seconds: float
    cpu_seconds: float
    reports: list[dict] = field(default_factory=list)
    gram_bytes: int = 0
    val_se: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- grids and selection
def split(name: str) -> tuple[str, str]:
    """``"obs+ls"`` → ``("obs", "ls")``; ``"l2"`` → ``("l2", "")``."""
    selection, _, mode = name.partition("+")
    return selection, mode


def method_name(criterion: str, mode: str) -> str:
    """``("l2", "none")`` → ``"l2"``; ``("l2", "ls")`` → ``"l2+ls"``."""
    return criterion if mode == "none" else f"{criterion}+{mode}"


def grid_of(name: str, args) -> dict[str, list]:
    """The hyper-parameter grid of method ``name`` (``{}``: nothing to tune), ordered
    from the most conservative value: validation ties go to the first (the larger
    damping, the smaller Adam step), as the one-standard-error habit of preferring the
    more regularized model does — small dampings give the same fit to the image, and a
    tie there must not read as "best at the edge"."""
    mode = split(name)[1]
    if mode in ("ls", "ls_all"):
        return {"damping": sorted(args.damping, reverse=True)}
    if mode == "block":
        return {"lr": sorted(args.block_lr)}
    return {}


def default_of(name: str) -> dict[str, Any]:
    """The documented default configuration of ``name`` (``ReconstructConfig``'s)."""
    return {} if name.startswith("tp_") else dict(DEFAULTS[split(name)[1]])


def check_grids(methods: list[str], args) -> None:
    """Refuse before any work: tuned methods come in comparisons of equal grids (≥ 2),
    and each method's default lies on its grid (its default row is one of its runs)."""
    tuned = {m: grid_of(m, args) for m in methods if grid_of(m, args)}
    if len(tuned) == 1:
        raise SystemExit(f"refused: {list(tuned)[0]} is the only method with a grid; a tuned "
                         "comparison needs two (add e.g. obs+ls) or none")
    for m, grid in tuned.items():
        for key, value in default_of(m).items():
            if value not in grid[key]:
                raise SystemExit(f"refused: {m}'s default {key}={value:g} is not on its grid "
                                 f"{grid[key]}")
    if len(tuned) > 1:
        try:
            Comparison("grids", [Method(m, 1, g) for m, g in tuned.items()], "fits")
        except RuleViolation as err:
            raise SystemExit(f"refused: {err}") from err


def select(level: str, cands: dict[str, list[Candidate]], args) -> tuple[dict, list]:
    """Per method its default candidate (comparison "defaults") and, for methods with a
    grid, the candidate chosen on validation (comparison "tuned")."""
    chosen: dict[tuple[str, str], Candidate] = {}
    cmps = []
    names = list(cands)
    if len(names) >= 2:
        defaults = Comparison(f"{level} defaults", [Method(m, 1) for m in names], "fits")
        for m in names:
            pick = next(c for c in cands[m] if c.values == default_of(m))
            defaults.select(m, [({}, pick.val)])
            defaults.spend(m, 1)
            chosen[(m, "default")] = pick
        cmps.append(defaults)
    else:
        chosen[(names[0], "default")] = next(c for c in cands[names[0]]
                                             if c.values == default_of(names[0]))
    tunable = [m for m in names if grid_of(m, args)]
    if tunable:
        size = len(cands[tunable[0]])
        tuned = Comparison(f"{level} tuned", [Method(m, size, grid_of(m, args))
                                              for m in tunable], "fits")
        for m in tunable:
            choice = tuned.select(m, one_se(cands[m]))
            tuned.spend(m, len(cands[m]))
            chosen[(m, "tuned")] = next(c for c in cands[m] if c.values == choice.values)
        cmps.append(tuned)
    return chosen, cmps


def one_se(cands: list[Candidate]) -> list[tuple[dict, float]]:
    """Validation scores under the one-standard-error rule: every configuration within one
    SE of the best scores as the best, so the first of them in grid order (the most
    regularized) is chosen. Scores without an SE (accuracy counts) are left as they are."""
    best = max(cands, key=lambda c: c.val)
    return [(c.values, best.val if c.val >= best.val - best.val_se else c.val) for c in cands]


# ---------------------------------------------------------------- CNN methods
def context(calib, args, labels: bool) -> ImportanceContext:
    """The calibration images in ``--batch`` batches (with labels and cross-entropy for
    gradient criteria): the same images for every method."""
    xs, ys = calib[0].split(args.batch), calib[1].split(args.batch)
    if labels:
        return ImportanceContext(batches=list(zip(xs, ys, strict=True)), n_batches=len(xs),
                                 loss_fn=nn.CrossEntropyLoss())
    return ImportanceContext(batches=list(xs), n_batches=len(xs))


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t[0], time.process_time() - t[1]


def prunekit_cut(dense, calib, x1, target, importance, args):
    """``prunekit.prune`` to ``target`` MACs (no reconstruction) and its cost."""
    import prunekit

    model = copy.deepcopy(dense)
    ctx = context(calib, args, labels=importance == "taylor")
    t = clock()
    data_driven = {} if importance in ("l1", "l2") else {"calibration": ctx}
    res = prunekit.prune(model, x1, target_macs=target, importance=importance,
                         progress=False, **data_driven)
    return res, since(t)


def refit(dense, model, plan, calib_ctx, mode: str, values: dict, args
          ) -> tuple[list[dict], tuple[float, float]]:
    """``reconstruct`` ``model`` in place with ``mode`` and the grid ``values``."""
    base, _, layers = mode.partition("_")
    cfg = ReconstructConfig(mode=base, damping=values.get("damping", args.block_damping
                                                          if base == "block" else 0.0),
                            layers=layers or "consumers", steps=args.steps,
                            lr=values.get("lr", 1e-4))
    t = clock()
    reports = [r.to_dict() for r in reconstruct(dense, model, plan, calib_ctx, cfg)]
    return reports, since(t)


def gram_bytes(model: nn.Module, reports: list[dict]) -> int:
    """Bytes of the largest Gram system held (float64 ``G`` and ``C`` of one layer)."""
    from prunekit.importance.linear_forms import form_of

    most = 0
    for r in reports:
        if r["method"] != "ls":   # bias compensation holds O(out) sums only
            continue
        form = form_of(model.get_submodule(r["layer"]))
        k = form.weight().shape[1] + 1
        out = form.weight().shape[0] // form.groups
        most = max(most, 8 * form.groups * (k * k + out * k))
    return most


def torch_pruning(dense, calib, x1, macs_goal, kind, args) -> Candidate:
    """Torch-Pruning (``BasePruner``, uniform ratio, output layer ignored, as its docs
    say) bisected to at most ``macs_goal`` MACs."""
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
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        tp.pruner.BasePruner(model, x1, importance=imp, pruning_ratio=ratio,
                             ignored_layers=[last]).step()
        model.zero_grad(set_to_none=True)
        return model.eval()

    t = clock()
    lo, hi = 0.0, 0.99
    for _ in range(4 if args.smoke else 12):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if count_macs(cut(mid), x1) > macs_goal else (lo, mid)
    model = cut(hi)
    spent = since(t)
    return Candidate(model, {}, 0.0, *spent, extra={"ratio": round(hi, 4)})


def cnn_candidates(name, dense, data, calib, x1, target, cuts, args) -> list[Candidate]:
    """Every configuration of method ``name`` on the grid (validation accuracy scored)."""
    if name.startswith("tp_"):
        goal = count_macs(_cut(cuts, "l2", dense, calib, x1, target, args)[0].model, x1)
        out = [torch_pruning(dense, calib, x1, goal, name[3:], args)]
    else:
        selection, mode = split(name)
        res, cost = _cut(cuts, selection, dense, calib, x1, target, args)
        configs = [dict(zip(grid_of(name, args), v)) for v in
                   _product(grid_of(name, args))] if mode else [{}]
        out = []
        for values in configs:
            model = copy.deepcopy(res.model)
            reports, spent = refit(dense, model, res.plan, context(calib, args, False), mode,
                                   values, args) if mode else ([], (0.0, 0.0))
            out.append(Candidate(model, values, 0.0, cost[0] + spent[0], cost[1] + spent[1],
                                 reports, gram_bytes(model, reports)))
    for c in out:
        c.val = evaluate(c.model, data.val)
    return out


def _product(grid: dict[str, list]) -> list[tuple]:
    import itertools

    return list(itertools.product(*grid.values()))


def _cut(cuts, importance, dense, calib, x1, target, args):
    if importance not in cuts:
        cuts[importance] = prunekit_cut(dense, calib, x1, target, importance, args)
    return cuts[importance]


def run_cnn(args, rec: harness.Run) -> dict:
    """One seed: the dense model, then every method at every target."""
    spec = CNNS[args.model]
    data = harness.fashion_mnist(args.train_size, args.seed, args.smoke)
    dense = spec.dense(data, args).eval()
    calib = (data.train[0][:args.calib], data.train[1][:args.calib])
    x1 = calib[0][:1]
    macs0 = count_macs(dense, x1)
    size = sum(p.numel() * p.element_size() for p in dense.parameters())
    rows = [{"level": "dense", "method": "dense", "selection": "dense",
             "val": evaluate(dense, data.val), "macs": macs0, "mac_reduction": 1.0,
             "test": data.evaluate("dense", lambda t: evaluate(dense, t)),
             "model_bytes": size}]
    cmps: list[Comparison] = []
    for target in args.targets:
        level = f"{1 / target:g}x"
        cuts: dict[str, Any] = {}
        cands = {m: cnn_candidates(m, dense, data, calib, x1, target, cuts, args)
                 for m in args.methods}
        chosen, level_cmps = select(level, cands, args)
        cmps += level_cmps
        for (m, how), c in chosen.items():
            macs = count_macs(c.model, x1)
            rows.append({"level": level, "target": target, "method": m, "selection": how,
                         "values": c.values, "val": c.val, "macs": macs,
                         "mac_reduction": macs0 / macs,
                         "test": data.evaluate(f"{level} {m} {how}",
                                               lambda t, c=c: evaluate(c.model, t)),
                         "seconds": c.seconds, "cpu_seconds": c.cpu_seconds,
                         "gram_bytes": c.gram_bytes, "model_bytes": size, **c.extra,
                         "candidates": [{"values": o.values, "val": o.val} for o in cands[m]],
                         "reconstruction": c.reports})
            r = rows[-1]
            console.log(f"seed {args.seed} {level} {m:18s} {how:7s} {c.values} val "
                        f"{r['val']:.4f} test {r['test']:.4f} ({r['mac_reduction']:.2f}x, "
                        f"{r['cpu_seconds']:.1f} CPU s)")
    payload = {"model": args.model, "rows": rows, "calibration": calibration_note(args),
               "table": {"columns": SEED_COLUMNS, "rows": seed_table(rows)}}
    out = rec.write(harness.out_path(args, f"oneshot_{args.model}_s{args.seed}"), payload,
                    comparison=cmps, splits=data)
    console.print(f"wrote {out}")
    return payload


def calibration_note(args) -> dict[str, Any]:
    return {"rule": "equal calibration data: every method scores and re-fits on the same "
                    "calibration set", "samples": args.calib,
            "batch": 32 if args.model == "minilm" else args.batch,
            "source": "the first --calib samples of the training split (minilm: the first "
                      "--calib distillation texts)",
            "labels": "used by taylor / tp_taylor only"}


SEED_COLUMNS = ["level", "method", "selection", "values", "val", "test", "MAC reduction",
                "CPU s"]


def seed_table(rows: list[dict]) -> list[list]:
    return [[r["level"], r["method"], r["selection"], r.get("values", {}),
             f"{100 * r['val']:.2f}", f"{100 * r['test']:.2f}", f"{r['mac_reduction']:.2f}",
             f"{r.get('cpu_seconds', 0.0):.1f}"] for r in rows]


# ---------------------------------------------------------------- combine seeds
COMBINED_COLUMNS = ["level", "method", "selection", "seeds", "test acc. % (mean ± SE)",
                    "MAC reduction (mean)", "CPU s (mean)"]
PAIR_COLUMNS = ["level", "comparison", "a − b", "seeds", "mean Δ ± SE (pt)", "verdict",
                "a ahead in"]


def combine(args, rec: harness.Run) -> dict:
    """One summary from complete per-seed files of one command (seeds differ): mean ± SE
    per method and the paired differences of :data:`PAIRS` with their verdicts."""
    rows, sources, configs = [], [], set()
    for path in args.combine:
        doc = record.load(path)
        state = record.status(doc)
        if state != "ok":
            raise SystemExit(f"{path}: {state} — only complete, valid harness-written runs "
                             "are combined")
        cfg = dict(doc["provenance"]["identity"]["config"])
        seed = cfg.pop("seed")
        configs.add(repr(sorted(cfg.items())))
        rows += [{**r, "seed": seed} for r in doc["rows"]]
        sources.append({"file": str(path), "seed": seed, "command": doc["provenance"]["command"],
                        "commit": doc["provenance"]["git"]["commit"],
                        "dirty": doc["provenance"]["git"].get("dirty"),
                        "load_average": doc["provenance"]["load_average"],
                        "comparisons": [c["name"] for c in doc.get("comparisons", [])]})
    seeds = [s["seed"] for s in sources]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"the same seed was given twice: {seeds}")
    if len(configs) != 1:
        raise SystemExit("the files were written with different options (other than --seed)")
    summary, pairs = summarize(rows), paired(rows)
    first = record.load(args.combine[0])
    grids = {m["name"]: m["grid"] for c in first.get("comparisons", [])
             if c["name"].endswith(" tuned") for m in c["methods"]}
    model = first["model"]
    payload = {"model": model, "sources": sources, "summary": summary, "pairs": pairs,
               "calibration": first["calibration"], "grids": grids,
               "table": {"columns": COMBINED_COLUMNS, "rows": [
                   [s["level"], s["method"], s["selection"], s["n"],
                    f"{s['test_mean']:.2f} ± {s['test_se']:.2f}", f"{s['mac_reduction']:.2f}",
                    f"{s['cpu_seconds']:.1f}"] for s in summary]},
               "pair_table": {"columns": PAIR_COLUMNS, "rows": [
                   [p["level"], p["comparison"], f"{p['a']} − {p['b']}", p["n"],
                    tables.mean_se_text(p["mean_delta_pt"], p["se_pt"]), p["verdict"],
                    f"{p['a_wins']} of {p['n']}"] for p in pairs]}}
    out = rec.write(harness.out_path(args, f"oneshot_{model}_seeds"), payload)
    tables.show("one-shot: test accuracy over seeds", COMBINED_COLUMNS, payload["table"]["rows"])
    tables.show("paired over seeds", PAIR_COLUMNS, payload["pair_table"]["rows"])
    console.print(f"wrote {out}")
    return payload


def summarize(rows: list[dict]) -> list[dict]:
    keys = list(dict.fromkeys((r["level"], r["method"], r["selection"]) for r in rows))
    out = []
    for level, method, how in keys:
        at = [r for r in rows if (r["level"], r["method"], r["selection"]) == (level, method, how)]
        mean, se = mean_se([100 * r["test"] for r in at])
        out.append({"level": level, "method": method, "selection": how, "n": len(at),
                    "seeds": [r["seed"] for r in at], "test_mean": mean, "test_se": se,
                    "mac_reduction": sum(r["mac_reduction"] for r in at) / len(at),
                    "cpu_seconds": sum(r.get("cpu_seconds", 0.0) for r in at) / len(at)})
    return out


def paired(rows: list[dict]) -> list[dict]:
    """Every pair of :data:`PAIRS` present at a level: per-seed Δ (points) and verdict."""
    how = {"defaults": "default", "tuned": "tuned"}
    out = []
    for level in dict.fromkeys(r["level"] for r in rows if r["level"] != "dense"):
        for cmp, a, b in PAIRS:
            acc = {m: {r["seed"]: r["test"] for r in rows if r["level"] == level
                       and r["method"] == m and r["selection"] == how[cmp]} for m in (a, b)}
            seeds = sorted(set(acc[a]) & set(acc[b]))
            if not seeds:
                continue
            d = [100 * (acc[a][s] - acc[b][s]) for s in seeds]
            mean, se = mean_se(d)
            try:
                say = verdict(d)
            except RuleViolation:
                say = f"no verdict ({len(d)} seeds < 5)"
            out.append({"level": level, "comparison": cmp, "a": a, "b": b, "n": len(d),
                        "seeds": seeds, "delta_pt": d, "mean_delta_pt": mean, "se_pt": se,
                        "verdict": say, "a_wins": sum(x > 0 for x in d)})
    return out


# ---------------------------------------------------------------- MiniLM
def run_minilm(args, rec: harness.Run) -> dict:
    """all-MiniLM-L6-v2 width cuts of ``--shapes``: every criterion × mode, damping chosen
    on the held-out texts' cosine, test Recall@1 read once per reported configuration."""
    import os

    from benchmarks import minilm as mb

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    margs = mb.parse_args(["--smoke"] if args.smoke else ["--no-torch-pruning"])
    margs.threads = args.threads
    setup = mb.load_setup(margs)
    texts = sorted(setup.data.extra_text[:args.calib], key=len)
    setup.calib = [mb.tokenize(setup.tokenizer, texts[i:i + 32], margs.seq)
                   for i in range(0, len(texts), 32)]
    held = setup.data.extra_text[args.calib:args.calib + args.val]
    data = harness.Splits((texts,), (held,), ([f"WordNet R@1, {margs.n} standard nouns"],), {
        "calibration": f"the first {args.calib} distillation texts", "val": f"the next "
        f"{len(held)} distillation texts (mean cosine to the dense embeddings)"})
    dense = data.evaluate("dense", lambda _: mb.evaluate(setup.dense, setup, None)["recall_at_1"])
    ref = mb.wordnet_retrieval(setup.dense, setup.tokenizer, setup.data,
                               max_length=margs.seq).embeddings
    rows = [{"level": "dense", "method": "dense", "selection": "dense", "test": dense}]
    cmps = []
    for shape in args.shapes:
        level = ",".join(map(str, shape))
        cands, speed = {}, {}
        for criterion in args.criteria:
            model, plan, cut_s = minilm_cut(setup, shape, criterion)
            dense_ms, ms = mb.measure_pair(setup.dense, model, setup)
            speed[criterion] = {"measured_speedup": dense_ms / ms, "dense_ms": dense_ms,
                                "ms": ms, "cut_s": cut_s}
            for mode in args.modes:
                name = method_name(criterion, mode)
                cands[name] = minilm_candidates(setup, model, plan, name, held, args)
        chosen, level_cmps = select(level, cands, args)
        cmps += level_cmps
        for (m, how), c in chosen.items():
            data.test(f"{level} {m} {how}")   # the one read of the test nouns for this row
            test = mb.evaluate(c.model, setup, ref)
            rows.append({"level": level, "shape": list(shape), "method": m, "selection": how,
                         "values": c.values, "val_cosine": c.val, **speed[split(m)[0]],
                         "test": test["recall_at_1"], "test_cosine": test["mean_cosine"],
                         "of_dense": test["recall_at_1"] / dense,
                         "seconds": c.seconds, "cpu_seconds": c.cpu_seconds,
                         "gram_bytes": c.gram_bytes, "candidates": [
                             {"values": o.values, "val_cosine": o.val, "val_se": o.val_se}
                             for o in cands[m]],
                         "reconstruction": c.reports})
            r = rows[-1]
            console.log(f"{level} {m:14s} {how:7s} {c.values} {r['measured_speedup']:.2f}x "
                        f"val cos {c.val:.4f} R@1 {r['test']:.4f} ({100 * r['of_dense']:.1f} "
                        f"% of dense)")
    payload = {"model": "minilm", "rows": rows, "timings": setup.timings,
               "calibration": calibration_note(args),
               "table": {"columns": MINILM_COLUMNS, "rows": [
                   [r["level"], r["method"], r["selection"], r.get("values", {}),
                    f"{r.get('measured_speedup', 1.0):.2f}", f"{r.get('val_cosine', 1.0):.4f}",
                    f"{r['test']:.3f}", f"{100 * r.get('of_dense', 1.0):.1f}"]
                   for r in rows]}}
    out = rec.write(harness.out_path(args, "oneshot_minilm"), payload, comparison=cmps,
                    splits=data)
    tables.show("MiniLM one-shot", MINILM_COLUMNS, payload["table"]["rows"])
    console.print(f"wrote {out}")
    return payload


MINILM_COLUMNS = ["shape (layers,heads,ffn)", "method", "selection", "values",
                  "measured speedup", "val cosine", "test R@1", "% of dense"]


def minilm_cut(setup, shape, criterion: str) -> tuple[nn.Module, Any, float]:
    """Heads and FFN units removed per layer (the lowest ``criterion`` scores on the
    calibration text), as ``minilm.py``'s width cut does; the plan too."""
    from prunekit.graph import build_groups
    from prunekit.importance import get
    from prunekit.surgery import remove_channels

    layers, heads, ffn = shape
    if layers:
        raise SystemExit("oneshot --model minilm cuts width only (layers = 0)")
    model = copy.deepcopy(setup.dense)
    ex = setup.calib[0]
    t = clock()
    gs = build_groups(model, ex)
    ctx = ImportanceContext(example_inputs=ex, batches=setup.calib, n_batches=len(setup.calib))
    removal = {}
    for g in gs.groups:
        k = heads if g.id.endswith("attention.self.query") else (
            ffn if g.id.endswith("intermediate.dense") else 0)
        if k:
            removal[g.id] = torch.argsort(get(criterion)(model, g, ctx))[:k].tolist()
    plan = remove_channels(model, gs, removal, ex)
    return model, plan, since(t)[0]


_DENSE_EMB: dict[int, torch.Tensor] = {}


def cosine(setup, model: nn.Module, texts: list[str]) -> tuple[float, float]:
    """Mean cosine between ``model``'s and the dense model's embeddings of ``texts``, and
    its standard error over the texts."""
    from prunekit.eval.embed import embed_texts

    if id(texts) not in _DENSE_EMB:
        _DENSE_EMB[id(texts)] = embed_texts(setup.dense, setup.tokenizer, texts)
    emb = embed_texts(model, setup.tokenizer, texts)
    cos = (emb * _DENSE_EMB[id(texts)]).sum(1)
    return float(cos.mean()), float(cos.std() / len(cos) ** 0.5)


def minilm_candidates(setup, cut_model, plan, name, held, args) -> list[Candidate]:
    mode = split(name)[1]
    ctx = ImportanceContext(batches=setup.calib, n_batches=len(setup.calib))
    configs = [dict(zip(grid_of(name, args), v)) for v in
               _product(grid_of(name, args))] if mode else [{}]
    out = []
    for values in configs:
        model = copy.deepcopy(cut_model)
        reports, spent = refit(setup.dense, model, plan, ctx, mode, values, args) if mode \
            else ([], (0.0, 0.0))
        val, se = cosine(setup, model, held)
        out.append(Candidate(model, values, val, *spent, reports, gram_bytes(model, reports),
                             val_se=se))
    return out


# ---------------------------------------------------------------- command line
def _shape(text: str) -> tuple[int, int, int]:
    parts = [int(v) for v in text.split(",")]
    if len(parts) != 3 or min(parts) < 0:
        raise ValueError(f"a shape is layers,heads,ffn (three integers >= 0), got {text!r}")
    return tuple(parts)


def parse(argv=None):
    p = harness.parser("oneshot", __doc__, smoke_help="synthetic data, seconds")
    p.add_argument("--model", choices=[*CNNS, "minilm"], default="lenet5")
    p.add_argument("--targets", type=float, nargs="+", default=[0.25, 0.125],
                   help="MAC fractions to keep (0.25: 4x fewer MACs)")
    p.add_argument("--methods", nargs="+", default=CORE + EXTRA,
                   help="selection[+bias|+ls|+ls_all|+block], tp_magnitude, tp_taylor")
    p.add_argument("--calib", type=int, default=1024, help="calibration samples (all methods)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--damping", type=float, nargs="+",
                   default=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8],
                   help="ridge damping grid of ls (chosen on validation)")
    p.add_argument("--block-lr", type=float, nargs="+",
                   default=[1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3], help="Adam lr grid of block")
    p.add_argument("--block-damping", type=float, default=1e-2,
                   help="damping of block's least-squares start")
    p.add_argument("--steps", type=int, default=200, help="Adam steps per block segment")
    p.add_argument("--train-size", type=int, default=None, help="default: the model's own")
    p.add_argument("--dense-epochs", type=int, default=None, help="default: the model's own")
    p.add_argument("--lr", type=float, default=1e-3, help="dense training lr")
    p.add_argument("--shapes", type=_shape, nargs="+", default=[(0, 0, 832)],
                   help="minilm: layers,heads,ffn units removed per layer")
    p.add_argument("--criteria", nargs="+", default=["l2", "obs"], help="minilm selection")
    p.add_argument("--modes", nargs="+", default=["none", "ls"],
                   choices=["none", "bias", "ls", "ls_all", "block"],
                   help="minilm reconstruction after the cut")
    p.add_argument("--val", type=int, default=500, help="minilm: held-out texts (selection)")
    p.add_argument("--combine", nargs="+", type=Path, default=None,
                   help="only combine these per-seed result files (oneshot_<model>_seeds.json)")
    p.add_operational("--progress", action="store_true", help="progress bars while training")
    p.add_operational("--dense-cache", type=Path,
                      default=Path.home() / ".cache" / "prunekit" / "bench",
                      help="directory caching the trained dense models")
    args = p.parse(argv)
    if args.model in CNNS:
        spec = CNNS[args.model]
        args.train_size = args.train_size or spec.train_size
        args.dense_epochs = args.dense_epochs or spec.dense_epochs
    if args.smoke:
        args.calib, args.batch, args.steps, args.dense_epochs = 64, 32, 5, 1
        args.targets, args.damping, args.block_lr = args.targets[:1], [1e-3, 1e-2, 1e-1], \
            [3e-5, 1e-4, 3e-4]
        args.val, args.shapes = 32, [(0, 1, 64)]
    if not args.combine:
        methods = args.methods if args.model in CNNS else [
            method_name(c, m) for c in args.criteria for m in args.modes]
        check_grids(methods, args)
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    with harness.session(args) as rec:
        if args.combine:
            return combine(args, rec)
        if args.model == "minilm":
            return run_minilm(args, rec)
        return run_cnn(args, rec)


if __name__ == "__main__":
    main()
