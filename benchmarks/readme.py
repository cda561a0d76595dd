"""Write the README's result blocks from the result files: numbers generated, not typed.

Each claim of :mod:`benchmarks.claims` has a block in ``README.md`` between
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``; ``benchmarks/README.md`` has the
status table of every claim between ``<!-- results:claims -->`` markers. This module
rewrites those blocks from ``benchmarks/results/*.json``. A claim whose file was written
by its command under the harness (complete, every rule kept) gets its table; any other
gets a "not yet re-run under the fair harness" block saying why and how to re-run it.

Usage::

    python -m benchmarks.readme            # rewrite the blocks
    python -m benchmarks.readme --check    # exit 1 (and name the blocks) if they differ
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.claims import CLAIMS, Claim  # noqa: E402
from benchmarks.harness import record, tables  # noqa: E402
from benchmarks.harness.args import RESULTS, ROOT  # noqa: E402

BLOCK = re.compile(r"(<!-- results:(?P<name>[\w-]+) -->\n)(?P<body>.*?)"
                   r"(<!-- /results:(?P=name) -->)", re.S)
Renderer = Callable[[dict[str, Any]], str]
RENDERERS: dict[str, Renderer] = {}


def renderer(name: str) -> Callable[[Renderer], Renderer]:
    """Register the function that turns a claim's result file into Markdown."""
    def register(fn: Renderer) -> Renderer:
        RENDERERS[name] = fn
        return fn
    return register


# ---------------------------------------------------------------- blocks
def claim_block(claim: Claim, results: Path = RESULTS) -> str:
    """The README block of ``claim``: its generated table, or why there is none yet."""
    path = results / claim.file
    doc = record.load(path) if path.is_file() else None
    state = "missing" if doc is None else record.status(doc)
    if state == "ok" and claim.renderer:
        return RENDERERS[claim.renderer](doc).rstrip() + "\n\n" + source_line(claim, doc) + "\n"
    return pending(claim, state, doc)


def pending(claim: Claim, state: str, doc: dict[str, Any] | None) -> str:
    why = {"missing": "no result file yet", "legacy": "the file predates the harness",
           "partial": "the run has not finished", "ok": "no table renderer yet",
           "invalid": "the run broke a rule: " + "; ".join(
               (doc or {}).get("validity", {}).get("reasons", []))}[state]
    lines = [f"**Not yet re-run under the fair harness** ({why}). Re-run: `{claim.command}` "
             f"({claim.cost})."]
    if claim.issues:
        lines.append("Found in the previous evidence: " + "; ".join(claim.issues) + ".")
    if claim.legacy:
        lines.append(f"Pre-harness file, for reference only: "
                     f"`benchmarks/results/{claim.legacy}`.")
    return "\n".join(lines) + "\n"


def source_line(claim: Claim, doc: dict[str, Any]) -> str:
    prov = doc["provenance"]
    git = prov["git"]
    commit = (git.get("commit") or "?")[:7] + (" + uncommitted code" if git.get("dirty") else "")
    load = prov["load_average"]
    return (f"<sub>`{prov['command']}` → `benchmarks/results/{claim.file}`; commit {commit}; "
            f"{doc['machine'].get('cpu', '?')}, {doc['machine'].get('cores_usable', '?')} "
            f"cores; load {load['start'][0]:g} → {load['written'][0]:g}; "
            f"{prov['written'][:10]}.</sub>")


def claims_table(results: Path = RESULTS) -> str:
    """The status of every claim, for ``benchmarks/README.md``."""
    rows = []
    for c in CLAIMS:
        path = results / c.file
        state = record.status(record.load(path)) if path.is_file() else "missing"
        status = "regenerated" if state == "ok" else c.phase if c.phase != "regenerated" \
            else f"to re-run ({state})"
        rows.append([c.name, c.title, f"`{c.command}`", f"`{c.file}`", status, c.cost,
                     f"`{c.legacy}`" if c.legacy else "—"])
    return tables.markdown(["claim", "what", "command", "result file", "status", "cost",
                            "pre-harness file kept"], rows) + "\n"


# ---------------------------------------------------------------- renderers
@renderer("solver_speed")
def _solver_speed(doc: dict[str, Any]) -> str:
    cmp = doc["comparisons"][0]
    reps = {s["cpu_s_summary"]["n"] for r in doc["results"] for s in r["solvers"].values()
            if s.get("reached")}
    head = (f"CPU seconds to 1e-6 relative suboptimality, one thread; budget: at most "
            f"{cmp['budget']:g} CPU s per solver call for every solver; median (min–max) of "
            f"{'/'.join(map(str, sorted(reps)))} readings of the call that reached the "
            f"target. Last column: skglm's median ÷ BlockCD's.")
    return "\n\n".join([head, tables.markdown(doc["table"]["columns"], doc["table"]["rows"]),
                        _solver_reading(doc)])


def _solver_reading(doc: dict[str, Any]) -> str:
    """Per problem, BlockCD against skglm: faster, slower, or ranges that overlap."""
    said = []
    for r in doc["results"]:
        ours, theirs = r["solvers"].get("prunekit BlockCD"), r["solvers"].get("skglm GroupLasso")
        if not (ours and theirs and ours["reached"] and theirs["reached"]):
            continue
        a, b = ours["cpu_s_summary"], theirs["cpu_s_summary"]
        name = f"{r['problem']} α_max/{r['alpha_max_over']:g}"
        if a["max"] < b["min"]:
            said.append(f"{name}: BlockCD faster ({b['median'] / a['median']:.2f}×, ranges "
                        "disjoint)")
        elif b["max"] < a["min"]:
            said.append(f"{name}: skglm faster ({a['median'] / b['median']:.2f}×, ranges "
                        "disjoint)")
        else:
            said.append(f"{name}: ranges overlap, no difference shown")
    pkg = [r for r in doc["results"] if not r["solvers"].get("group-lasso (pkg)",
                                                             {"reached": True})["reached"]]
    tail = (f" The group-lasso package, now solving the same problem, did not reach the "
            f"target within the cap on {len(pkg)} of {len(doc['results'])} problems."
            if pkg else "")
    return "Reading: " + "; ".join(said) + "." + tail


@renderer("block_cs")
def _block_cs(doc: dict[str, Any]) -> str:
    block = doc["block_curve"]
    cfg = block["config"]
    target = doc["target"]["m_at_90_le"]
    rows = [[name, block["m_at_90"][name][0] or f"> {cfg['ms'][-1]}",
             *[f"{v:.0%}" for v in block["rates"][name][0]]] for name in block["methods"]]
    met = [n for n in block["methods"] if (block["m_at_90"][n][0] or 10 ** 9) <= target]
    head = (f"n = {cfg['n']}, k = {cfg['ks'][0]} nonzeros in blocks of {cfg['block_size']}, "
            f"{cfg['operator']} measurements, {cfg['trials']} trials per m (the same problems "
            f"for every method; greedy methods, scikit-learn's OMP included, are told k). "
            f"Smallest m with ≥ 90 % exact recovery, and the success rate at each m. "
            f"Target m ≤ 1.5k = {target:g}: met by {', '.join(met) or 'none'}.")
    return head + "\n\n" + tables.markdown(["method", "m at 90 %", *map(str, cfg["ms"])], rows)


@renderer("image_cs")
def _image_cs(doc: dict[str, Any]) -> str:
    cfg = doc["config"]
    grid = ", ".join(f"{g:g}" for g in cfg["grid"])
    head = (f"{cfg['side']}×{cfg['side']} photo, {cfg['operator']}, Haar basis; both methods "
            f"share the grid {cfg['param']} ∈ {{{grid}}}, chosen per m by {cfg['selection']}; "
            f"every choice interior. PSNR of the refitted recovery (dB):")
    table = tables.markdown(doc["table"]["columns"], doc["table"]["rows"], fmt=".4g")
    match = [[r["m_plain"], f"{r['psnr_plain']:.2f}",
              "—" if r["m_tree"] is None else f"{r['m_tree']:.0f}", r["bound"] or "—",
              "—" if r["saving"] is None else f"{r['saving']:.0%}"] for r in doc["match"]]
    savings = [r["saving"] for r in doc["match"] if r["saving"] is not None
               and r["bound"] == "interpolated"]
    tail = ("Measurements the tree lasso needs for L1's PSNR (one photo, one operator draw: "
            "a measured saving, not a verdict over seeds); target ≥ 40 %: " +
            (f"interpolated savings {min(savings):.0%}–{max(savings):.0%}, ≥ 40 % at "
             f"{sum(v >= 0.4 for v in savings)} of {len(savings)} points" if savings
             else "no interpolated point") + ".")
    return "\n\n".join([head, table, tail, tables.markdown(
        ["m (L1)", "PSNR L1", "m (tree lasso)", "", "saving"], match)])


@renderer("hierarchy")
def _hierarchy(doc: dict[str, Any]) -> str:
    head = ("Each method's regularization chosen on a validation split carved from the "
            f"training data (grids of {doc['config']['grid_size']} values each, every choice "
            "interior), the chosen model scored once on the test split; the last column "
            "counts supports along the validation path that break the hierarchy.")
    gaps = []
    for data, res in doc.get("results", {}).items():
        chosen = res["chosen"]
        inc = chosen.get("sklearn L1-logistic", {}).get("test_accuracy")
        if inc is not None and "tree" in chosen:
            gaps.append(f"{data} {100 * (chosen['tree']['test_accuracy'] - inc):+.1f} pt")
    tail = ("Tree lasso against scikit-learn's L1 logistic (one split, test accuracy): "
            + ", ".join(gaps) + "." if gaps else "")
    return "\n\n".join([head, tables.markdown(doc["table"]["columns"], doc["table"]["rows"]),
                        tail])


@renderer("table")
def _table(doc: dict[str, Any]) -> str:
    """Any result file that carries its own ``table`` (columns and rows)."""
    return tables.markdown(doc["table"]["columns"], doc["table"]["rows"])


@renderer("coverage")
def _coverage(doc: dict[str, Any]) -> str:
    """Zoo coverage: pass counts per tool, what prunekit left whole and why, the models
    where the tools differ (the whole table folded below)."""
    summ = doc["summary"]
    ours, theirs = summ["prunekit"], summ["torch_pruning"]
    left = ours.get("left_whole_models", {})
    head = (f"Channel ratio 0.5, random weights, each run in its own subprocess with a time "
            f"limit; *ok* = the pruned model runs, keeps its output shapes and has fewer MACs. "
            f"prunekit ok on **{ours['ok']} of {ours['models']}** models "
            f"({ours['ok_1.5x']} with ≥ 1.5× fewer MACs), Torch-Pruning (configured as its "
            f"docs say) on **{theirs['ok']} of {theirs['models']}** ({theirs['ok_1.5x']} with "
            f"≥ 1.5×). Status counts: prunekit {_counts(ours.get('status', {}))}; "
            f"Torch-Pruning {_counts(theirs.get('status', {}))}.")
    whole = "; ".join(f"{why}: {len(models)} model(s)" + (f" ({', '.join(models)})"
                                                       if models and len(models) <= 12 else "")
                      for why, models in left.items())
    tail = ("prunekit left groups whole (named in `skipped`, by why): " + whole + "."
            if whole else "")
    cols, rows = doc["table"]["columns"], doc["table"]["rows"]
    differ = [r for r in rows if r[1] != r[5] or r[1] != "ok" or r[4] != "—"]
    parts = [head, tail]
    if differ:
        parts += ["Models where the tools differ, either fails, or prunekit left something "
                  "whole:", tables.markdown(cols, differ)]
    parts.append("<details><summary>Every model</summary>\n\n" + tables.markdown(cols, rows)
                 + "\n\n</details>")
    return "\n\n".join(p for p in parts if p)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


@renderer("heatmaps")
def _heatmaps(doc: dict[str, Any]) -> str:
    """Per structure: the smallest m with ≥ 90 % exact recovery, per method and k."""
    parts = []
    for structure, res in doc["heatmaps"].items():
        cfg = res["config"]
        top = f"> {cfg['ms'][-1]}"
        rows = [[name, *[top if m is None else m for m in res["m_at_90"][name]]]
                for name in res["methods"]]
        kind = "plain sparse" if structure == "sparse" else f"{structure}-sparse"
        parts.append(f"*{kind}*, n = {cfg['n']}"
                     + (f", blocks of {cfg['block_size']}" if structure == "block" else "")
                     + f", {cfg['trials']} trials per cell, {cfg['operator']} measurements "
                     "(the same problems for every method): smallest m with ≥ 90 % exact "
                     "recovery, per k.\n\n"
                     + tables.markdown(["method", *[f"k = {k}" for k in cfg["ks"]]], rows))
    return "\n\n".join(parts)


@renderer("diagnose")
def _diagnose(doc: dict[str, Any]) -> str:
    """The λ sweep: accuracy (validation: what the sweep reads; test: read once per λ),
    what was kept, redundancy measures, and the safe / collapse λ read on validation."""
    sweep, test = doc["sweep"], doc.get("test_accuracy", {})
    rows = [[f"{r['lam']:g}", f"{100 * r['accuracy']:.2f}", _pct(test.get(f"{r['lam']:g}")),
             _num(r.get("kept_fraction")), _num(r.get("params"), ","),
             *[_num(r.get(k)) for k in ("erank_ratio", "dead_fraction", "act_cosine_mean_abs")]]
            for r in doc["table"]]
    head = (f"Small CNN on Fashion-MNIST, one model per λ (same initialization), proximal "
            f"group lasso then surgery; accuracy read on a validation split carved from the "
            f"training images; collapse = a drop of more than "
            f"{100 * sweep['collapse_drop']:g} pt from λ = 0. Largest safe λ: "
            f"{sweep['safe_lam']:g}; first collapsed λ: {sweep['collapse_lam']}.")
    cols = ["λ", "val acc. %", "test acc. %", "groups kept", "params", "eff. rank ratio",
            "dead fraction", "act. cosine (mean abs)"]
    return head + "\n\n" + tables.markdown(cols, rows)


def _num(value: float | None, fmt: str = ".3g") -> str:
    return "—" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


@renderer("timed_table")
def _timed_table(doc: dict[str, Any]) -> str:
    """A result file's own table, with the load it was timed under said next to it."""
    load = doc["provenance"]["load_average"]
    cores = doc["machine"].get("cores_usable", "?")
    note = (f"Timed on a shared machine, not an idle one: load average {load['start'][0]:g} "
            f"at the start and {load['written'][0]:g} at the end on {cores} cores. Speedups "
            "are medians of paired (ABBA) rounds against the reference, every reading kept "
            "in the JSON; read them as indicative, an idle-box re-timing may differ.")
    return note + "\n\n" + tables.markdown(doc["table"]["columns"], doc["table"]["rows"])


@renderer("pooling")
def _pooling(doc: dict[str, Any]) -> str:
    """Pooling alone (nn.MaxPool2d vs the strided form), then LeNet-5 end to end."""
    rows = [[r["where"], "×".join(map(str, r["shape"])), f"{r['kernel']}/{r['stride']}",
             f"{r['max_pool2d_ms']:.3g}", f"{r['strided_ms']:.3g}",
             f"{r['speedup']:.2f} ({r['speedup_range'][0]:.2f}–{r['speedup_range'][1]:.2f})"]
            for r in doc["pooling"]]
    pools = tables.markdown(["where", "input", "kernel/stride", "MaxPool2d ms (median)",
                             "strided ms (median)", "speedup (per-round range)"], rows)
    return "\n\n".join([_timed_table(doc).split("\n\n")[0], "Pooling alone:", pools,
                        "LeNet-5 at uniform widths, dense vs pruned, as is (eager) and with "
                        "both models' pools swapped (ρ = speedup ÷ MAC reduction):",
                        tables.markdown(doc["table"]["columns"], doc["table"]["rows"])])


@renderer("mac_counter")
def _mac_counter(doc: dict[str, Any]) -> str:
    """Agreement counts with each reference counter, the models that disagree, and the
    whole table folded."""
    summ, tol = doc["summary"], doc["config"]["tolerance"]
    n = summ["n_models"]
    refs = [k[len("within_1pct_"):] for k in summ if k.startswith("within_1pct_")
            and "_and_" not in k]
    both = summ["within_1pct_flop_counter_and_(fvcore_matched_or_ptflops_aten)"]
    head = (f"Every torchvision classification model ({n}), random weights, batch 1, 224² "
            f"(299² for Inception-v3). prunekit's count within {tol:.0%} of: "
            + ", ".join(f"{k} on {summ['within_1pct_' + k]} of {n}" for k in refs)
            + f"; of flop_counter and (fvcore_matched or ptflops_aten) together on {both} of "
            f"{n}. fvcore and ptflops also count normalization, pooling or biases (conventions, "
            "not errors: `fvcore_matched` drops fvcore's non-MAC handles).")
    cols, rows = doc["table"]["columns"], doc["table"]["rows"]
    off = set(summ.get("disagreements", {}))
    parts = [head]
    if off:
        parts += ["Models where flop_counter or fvcore_matched differ by more than "
                  f"{tol:.0%}:", tables.markdown(cols, [r for r in rows if r[0] in off])]
    parts.append("<details><summary>Every model (relative difference to prunekit)</summary>"
                 "\n\n" + tables.markdown(cols, rows) + "\n\n</details>")
    return "\n\n".join(parts)


@renderer("seeds")
def _seeds(doc: dict[str, Any]) -> str:
    """A summary over seeds: per level, Δ = prunekit − incumbent, mean ± SE, wins, the
    verdict, the terms both sides got (budget, grid), and a plain reading."""
    kind = doc.get("kind", "")
    what = SEED_KINDS.get(kind, "Δ = prunekit − incumbent in points")
    head = (f"Paired per seed, {what}; the verdict is \"ahead\"/\"behind\" only over ≥ 5 "
            f"seeds with |mean Δ| > 2 SE, else \"tie\". {_seed_terms(doc)}")
    table = tables.markdown(doc["table"]["columns"], doc["table"]["rows"])
    return "\n\n".join([head.strip(), table, _seed_reading(doc["levels"])])


SEED_KINDS = {
    "training_methods_structured": "Δ = prunekit − Torch-Pruning test accuracy in points at "
                                   "the same MACs (within 1 %, or Torch-Pruning interpolated "
                                   "in log-MACs between two runs)",
    "training_vgg": "Δ = prunekit − Torch-Pruning test accuracy in points at the same MACs "
                    "(within 1 %, or interpolated)",
    "training_methods_unstructured": "Δ = prunekit recipe − torch.nn.utils.prune global "
                                     "magnitude test accuracy in points at the same "
                                     "compression",
    "training_methods_lottery": "Δ = lottery ticket − random re-initialization of the same "
                                "mask, test accuracy in points"}


def _seed_terms(doc: dict[str, Any]) -> str:
    """What every source's comparisons gave each method: budget and grid size."""
    budgets, sizes = set(), {}
    for src in doc.get("sources", []):
        for cmp in src.get("comparisons", []):
            budgets.add((cmp["budget"], cmp["budget_kind"]))
            for name, m in cmp["methods"].items():
                sizes.setdefault(name, set()).add(m["grid_size"])
    if not budgets:
        return ""
    said = "Budget: " + ", ".join(f"{b:g} {k}" for b, k in sorted(budgets)) + \
        " for every method (selection included)."
    if all(s == {1} for s in sizes.values()):
        return said + (" Neither side was tuned: each ran its documented defaults (a grid "
                       "of one configuration each, nothing selected).")
    return said + " Grid sizes, chosen on validation: " + ", ".join(
        f"{n} {'/'.join(map(str, sorted(s)))}" for n, s in sizes.items()) + "."


def _seed_reading(levels: list[dict[str, Any]]) -> str:
    """Where prunekit leads, ties and trails, said plainly."""
    by: dict[str, list[str]] = {}
    for s in levels:
        say = s["verdict"] if s["verdict"] in ("ahead", "tie", "behind") else "no verdict"
        by.setdefault(say, []).append(
            f"{s['level']} ({s['mean_delta_pt']:+.2f} ± {s['se_pt']:.2f} pt, ahead on "
            f"{s['gl_wins']} of {s['n']} seeds)")
    words = {"ahead": "prunekit ahead at", "tie": "tie (no difference shown) at",
             "behind": "prunekit behind at", "no verdict": "too few seeds for a verdict at"}
    return "Reading: " + "; ".join(f"{words[k]} {', '.join(v)}" for k, v in by.items()) + "."


@renderer("oneshot")
def _oneshot(doc: dict[str, Any]) -> str:
    """One-shot over seeds: test accuracy per method (defaults and tuned), the paired
    differences with their verdicts, and whether the 4× target (≥ 85 %) was met."""
    cal = doc["calibration"]
    n = max(s["n"] for s in doc["summary"])
    same: dict[str, list[str]] = {}
    for m, grid in doc.get("grids", {}).items():
        for k, vals in grid.items():
            same.setdefault(f"{k} ∈ {{{', '.join(f'{v:g}' for v in vals)}}}", []).append(m)
    grids = "; ".join(f"{' and '.join(ms)}: {g}" for g, ms in same.items())
    head = (f"LeNet-5 on Fashion-MNIST cut in one shot (no gradient training), {n} seeds "
            f"(dense model and data split); every method scores and re-fits on the same "
            f"{cal['samples']} calibration images (labels used by Taylor criteria only). "
            "*default*: each method as documented, nothing tuned (least-squares damping "
            "0.01); *tuned*: damping chosen on a validation split carved from the training "
            f"images ({grids}; equal grids, ties to the larger damping, every choice "
            "interior). Test "
            "accuracy %, mean ± SE; Torch-Pruning is bisected to at most prunekit l2's MACs.")
    met = [f"{s['method']} ({s['selection']}, {s['test_mean']:.2f} %)" for s in doc["summary"]
           if s["level"] == "4x" and s["test_mean"] >= 85.0]
    target = ("Target ≥ 85 % at 4× fewer MACs, one shot: " +
              (f"**met** by {', '.join(met)}." if met else "**not met**."))
    pairs = tables.markdown(doc["pair_table"]["columns"], doc["pair_table"]["rows"])
    return "\n\n".join([head, tables.markdown(doc["table"]["columns"], doc["table"]["rows"]),
                         target, "Paired per seed (Δ = a − b in points; \"ahead\"/\"behind\" "
                         "only over ≥ 5 seeds with |mean Δ| > 2 SE, else \"tie\"):", pairs])


# ---------------------------------------------------------------- files
def render(text: str, blocks: dict[str, str], where: str) -> str:
    """``text`` with every marked block replaced; unknown or missing markers raise."""
    found = [m.group("name") for m in BLOCK.finditer(text)]
    unknown = sorted(set(found) - set(blocks))
    missing = sorted(set(blocks) - set(found))
    if unknown or missing:
        raise SystemExit(f"{where}: unknown result blocks {unknown}, missing blocks {missing}")
    return BLOCK.sub(lambda m: m.group(1) + blocks[m.group("name")] + m.group(4), text)


def targets(root: Path = ROOT) -> dict[Path, dict[str, str]]:
    """Every file with result blocks under ``root`` and the blocks it must hold."""
    results = root / "benchmarks" / "results"
    return {root / "README.md": {c.name: claim_block(c, results) for c in CLAIMS},
            root / "benchmarks" / "README.md": {"claims": claims_table(results)}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true",
                   help="do not write; exit 1 when a block differs from its result files")
    p.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # tests
    args = p.parse_args(argv)
    stale = []
    for path, blocks in targets(args.root).items():
        old = path.read_text()
        new = render(old, blocks, str(path.relative_to(args.root)))
        if new == old:
            continue
        if args.check:
            stale += [f"{path.relative_to(args.root)}: {name}" for name in blocks
                      if _block(old, name) != _block(new, name)]
        else:
            path.write_text(new)
            print(f"wrote {path.relative_to(args.root)}")
    if stale:
        print("README result blocks differ from the result files (run "
              "`python -m benchmarks.readme`):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


def _block(text: str, name: str) -> str | None:
    m = next((m for m in BLOCK.finditer(text) if m.group("name") == name), None)
    return None if m is None else m.group("body")


if __name__ == "__main__":
    sys.exit(main())
