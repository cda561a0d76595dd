"""Hierarchical feature selection on real data: tree vs flat group lasso vs plain L1.

- breast cancer (569 × 30): the mean of each of the 10 measurements is the parent of
  its standard error and its worst value;
- digits (1797 × 85): a quadtree pyramid — image mean → 4 quadrant means → 16 block
  means → 64 pixels.

Stratified 70/30 train/test split; a stratified 20 % validation split carved from the
training part; features standardized on the rest of it. Least-squares classification on
±1 targets (one-vs-rest for digits; a feature counts once if any class uses it). Every
method — tree, flat group and plain L1 lasso (prunekit) and scikit-learn's L1 logistic
regression (liblinear, the incumbent) — gets a grid of 12 regularization values (one fit
each, to its solver's tolerance); its value is chosen on validation accuracy (ties: fewer
features), a choice at a grid edge marks the result invalid, and only the chosen model is
scored on the test split (once). Along each prunekit path the script checks that every
tree-lasso support is tree-consistent and counts how often the flat methods break the
hierarchy (no labels involved).

Usage::

    nice -n 10 python benchmarks/hierarchy.py          # a few CPU-minutes
    python benchmarks/hierarchy.py --smoke              # seconds
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import plots, tables  # noqa: E402
from benchmarks.harness.rules import Comparison, Method  # noqa: E402
from prunekit.apps.hierarchy import (  # noqa: E402
    METHODS,
    FeatureHierarchy,
    alpha_max,
    breast_cancer_hierarchy,
    digits_pyramid,
    selection_path,
)

SCALE = {"tree": 3.0, "group": 3.0, "l1": 1.0}   # group norms reach ~√|g| × the L1 α_max
INCUMBENT = "sklearn L1-logistic"


def load(name: str, smoke: bool, seed: int) -> tuple[harness.Splits, FeatureHierarchy]:
    """Train (standardized on itself) / validation (from train) / test splits."""
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "breast_cancer":
        d = load_breast_cancer()
        x, y, h = d.data, d.target, breast_cancer_hierarchy(list(d.feature_names))
    else:
        d = load_digits()
        x, h = digits_pyramid(d.images)
        y = d.target
    if smoke:
        x, y = x[:200], y[:200]
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    s = harness.carve((xtr, ytr), (xte, yte), val_fraction=0.2, seed=seed,
                      source=f"{name}: stratified 70/30 train/test, seed {seed}")
    sc = StandardScaler().fit(s.train[0])  # constant pixels: standardized to 0 (nan_to_num)
    std = lambda a: np.nan_to_num(sc.transform(a))  # noqa: E731
    return harness.Splits((std(s.train[0]), s.train[1]), (std(s.val[0]), s.val[1]),
                          (std(xte), yte), s.description), h


def comparison(name: str, grid: dict[str, np.ndarray]) -> Comparison:
    n = len(next(iter(grid.values())))
    return Comparison(f"hierarchy {name}", [
        Method(m, n, {"alpha" if m != INCUMBENT else "C": list(map(float, grid[m]))},
               incumbent=m == INCUMBENT) for m in grid], "fits")


def grids(xtr: np.ndarray, ytr: np.ndarray, n: int) -> dict[str, np.ndarray]:
    base = alpha_max(xtr, ytr) * np.geomspace(1.0, 3e-3, n)
    return {**{m: base * SCALE[m] for m in METHODS}, INCUMBENT: np.geomspace(1e-3, 10, n)}


def incumbent_l1(xtr, ytr, xte, yte, cs) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    rows = []
    for c in cs:
        clf = OneVsRestClassifier(LogisticRegression(l1_ratio=1.0, solver="liblinear",
                                                     C=float(c), max_iter=2000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(xtr, ytr)
        coef = np.vstack([e.coef_ for e in clf.estimators_])
        rows.append({"C": float(c), "n_features": int(np.any(coef != 0, axis=0).sum()),
                     "accuracy": float(clf.score(xte, yte))})
    return rows


def _select(cmp: Comparison, method: str, key: str, path: list[dict]) -> dict:
    """The path point with the best validation accuracy (ties: fewer features)."""
    scored = [({key: r[key]}, r["accuracy"] - 1e-9 * r["n_features"]) for r in path]
    choice = cmp.select(method, scored)
    point = next(r for r in path if r[key] == choice.values[key])
    return {"choice": choice.to_dict(), "val_accuracy": point["accuracy"],
            "n_features": point["n_features"]}


def run(name: str, smoke: bool, seed: int) -> dict:
    data, h = load(name, smoke, seed)
    (xtr, ytr), (xva, yva) = data.train, data.val
    grid = grids(xtr, ytr, 5 if smoke else 12)
    cmp = comparison(name, grid)
    paths, chosen = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ConvergenceWarning at tiny α
        for method in METHODS:
            paths[method] = selection_path(method, h, xtr, ytr, xva, yva, grid[method])
            chosen[method] = _select(cmp, method, "alpha", paths[method])
            (xte, yte) = data.test(f"{name} {method}")
            test = selection_path(method, h, xtr, ytr, xte, yte,
                                  np.array([chosen[method]["choice"]["values"]["alpha"]]))
            chosen[method]["test_accuracy"] = test[0]["accuracy"]
        sk = incumbent_l1(xtr, ytr, xva, yva, grid[INCUMBENT])
        chosen[INCUMBENT] = _select(cmp, INCUMBENT, "C", sk)
        (xte, yte) = data.test(f"{name} {INCUMBENT}")
        best_c = chosen[INCUMBENT]["choice"]["values"]["C"]
        chosen[INCUMBENT]["test_accuracy"] = incumbent_l1(xtr, ytr, xte, yte, [best_c])[0][
            "accuracy"]
    return {"paths_val": paths, "sklearn_l1_logistic_val": sk, "chosen": chosen,
            "hierarchy": _describe(h), "splits": data.to_dict(), "comparison": cmp}


def _describe(h: FeatureHierarchy) -> dict:
    return {"names": list(h.names), "parent": h.parent.tolist(),
            "flat_groups": [list(g) for g in h.flat_groups]}


COLUMNS = ["data", "method", "test accuracy (chosen on val)", "features", "choice",
           "inconsistent supports on the path"]


def summarize(name: str, res: dict) -> list[list]:
    rows = []
    for method, c in res["chosen"].items():
        path = res["paths_val"].get(method)
        broken = "—" if path is None else f"{sum(not r['consistent'] for r in path)}/{len(path)}"
        rows.append([name, method, c["test_accuracy"], c["n_features"],
                     c["choice"]["note"], broken])
    return rows


def plot(results: dict, path: Path) -> None:
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, (name, res) in zip(axes, results.items()):
        for method, p in res["paths_val"].items():
            pts = sorted((r["n_features"], r["accuracy"]) for r in p)
            ax.plot(*zip(*pts), marker="o", ms=3, label=f"{method} (prunekit)")
        pts = sorted((r["n_features"], r["accuracy"]) for r in res["sklearn_l1_logistic_val"])
        ax.plot(*zip(*pts), "k:", marker="x", ms=3, label="sklearn L1 logistic")
        ax.set(title=name, xlabel="features used", ylabel="validation accuracy")
        ax.legend(fontsize=7)
    plots.save(fig, path / "apps_hierarchy_accuracy.png")
    _plot_selected(results, path)


def _pick(path: list[dict], target: int) -> dict:
    """The path point whose feature count is closest to ``target``."""
    return min(path, key=lambda r: (abs(r["n_features"] - target), -r["accuracy"]))


def _plot_selected(results: dict, path: Path) -> None:
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.6),
                             gridspec_kw={"width_ratios": [2.2, 1, 1, 1]})
    bc = results["breast_cancer"]
    names = bc["hierarchy"]["names"]
    sel = set(_pick(bc["paths_val"]["tree"], 9)["support"])
    ax = axes[0]
    for i, g in enumerate(bc["hierarchy"]["flat_groups"]):
        root, kids = g[0], g[1:]
        for j, k in enumerate(kids):
            ax.plot([i, i + (j - 0.5) * 0.5], [1, 0], color="0.7", lw=1)
            ax.scatter(i + (j - 0.5) * 0.5, 0, s=60, color="C3" if k in sel else "0.85",
                       zorder=3)
        ax.scatter(i, 1, s=90, color="C3" if root in sel else "0.85", zorder=3)
        ax.text(i, 1.15, names[root].replace("mean ", ""), rotation=60, fontsize=6,
                ha="left", va="bottom")
    ax.set(ylim=(-0.4, 2.2), xticks=[], yticks=[0, 1])
    ax.set_yticklabels(["error / worst", "mean"], fontsize=7)
    ax.set_title("breast cancer: selected (red), tree lasso", fontsize=8)
    dg = results["digits"]
    for ax, method in zip(axes[1:], ("tree", "group", "l1")):
        chosen = _pick(dg["paths_val"][method], 40)
        _draw_pyramid(ax, set(chosen["support"]))
        ax.set_title(f"digits, {method}: {chosen['n_features']} feats, "
                     f"val acc {chosen['accuracy']:.2f}", fontsize=7)
    plots.save(fig, path / "apps_hierarchy_selected.png")


def _draw_pyramid(ax, support: set[int]) -> None:
    """Pixels selected (filled), blocks/quadrants selected (outlined), on an 8×8 grid."""
    from matplotlib.patches import Rectangle

    grid = np.zeros((8, 8))
    for p in range(64):
        if 21 + p in support:
            grid[divmod(p, 8)] = 1
    ax.imshow(grid, cmap="Reds", vmin=0, vmax=1.5)
    for b in range(16):
        if 5 + b in support:
            r, c = divmod(b, 4)
            ax.add_patch(Rectangle((2 * c - 0.5, 2 * r - 0.5), 2, 2, fill=False, ec="C0",
                                   lw=1.2))
    for q in range(4):
        if 1 + q in support:
            r, c = divmod(q, 2)
            ax.add_patch(Rectangle((4 * c - 0.5, 4 * r - 0.5), 4, 4, fill=False, ec="C2",
                                   lw=2))
    ax.set_xticks([])
    ax.set_yticks([])


def main(argv: list[str] | None = None) -> dict:
    parser = harness.parser("hierarchy", __doc__, smoke_help="200 samples, 5 values of α")
    args = parser.parse(argv)
    from threadpoolctl import threadpool_limits

    with harness.session(args) as rec, threadpool_limits(limits=1):
        results = {name: run(name, args.smoke, args.seed)
                   for name in ("breast_cancer", "digits")}
        rows = [row for name, res in results.items() for row in summarize(name, res)]
        tables.show("chosen on validation, scored once on test", COLUMNS, rows)
        comparisons = [r.pop("comparison") for r in results.values()]
        payload: dict[str, Any] = {"config": {"scale": SCALE, "grid_size": 5 if args.smoke
                                              else 12}, "results": results,
                                   "table": {"columns": COLUMNS, "rows": rows}}
        out = rec.write(harness.out_path(args), payload, comparison=comparisons)
        if args.img_dir is not None:
            plot(results, args.img_dir)
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
