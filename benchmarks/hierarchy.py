"""Hierarchical feature selection on real data: tree vs flat group lasso vs plain L1.

- breast cancer (569 × 30): the mean of each of the 10 measurements is the parent of
  its standard error and its worst value;
- digits (1797 × 85): a quadtree pyramid — image mean → 4 quadrant means → 16 block
  means → 64 pixels.

Stratified 70/30 split, standardized features, least-squares classification on ±1
targets (one-vs-rest for digits; a feature counts once if any class uses it). For
each method an α path (warm started) gives accuracy vs number of features; the script
checks that every tree-lasso support is tree-consistent and counts how often the flat
methods break the hierarchy. scikit-learn's L1 logistic regression (liblinear) is run
on the same split as the incumbent plain-L1 reference.

Usage::

    nice -n 10 .venv/bin/python benchmarks/hierarchy.py          # a few minutes
    .venv/bin/python benchmarks/hierarchy.py --smoke              # seconds
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from prunekit.apps.hierarchy import (
    METHODS,
    FeatureHierarchy,
    alpha_max,
    breast_cancer_hierarchy,
    digits_pyramid,
    selection_path,
)
from prunekit.apps.reporting import bench_parser, outputs, print_table, save_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
SCALE = {"tree": 3.0, "group": 3.0, "l1": 1.0}   # group norms reach ~√|g| × the L1 α_max


def load(name: str, smoke: bool):
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
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    sc = StandardScaler().fit(xtr)
    xtr, xte = sc.transform(xtr), sc.transform(xte)
    keep_scale = sc.scale_ > 0          # constant pixels: standardized to 0 by sklearn
    return np.nan_to_num(xtr), np.nan_to_num(xte), ytr, yte, h, keep_scale


def incumbent_l1(xtr, ytr, xte, yte, cs) -> list[dict]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    rows = []
    for c in cs:
        clf = OneVsRestClassifier(LogisticRegression(penalty="l1", solver="liblinear",
                                                     C=float(c), max_iter=2000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(xtr, ytr)
        coef = np.vstack([e.coef_ for e in clf.estimators_])
        rows.append({"C": float(c), "n_features": int(np.any(coef != 0, axis=0).sum()),
                     "accuracy": float(clf.score(xte, yte))})
    return rows


def run(name: str, smoke: bool) -> dict:
    xtr, xte, ytr, yte, h, _ = load(name, smoke)
    n_alpha = 3 if smoke else 12
    base = alpha_max(xtr, ytr) * np.geomspace(1.0, 3e-3, n_alpha)
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ConvergenceWarning at tiny α
        for method in METHODS:
            paths[method] = selection_path(method, h, xtr, ytr, xte, yte,
                                           base * SCALE[method])
    sk = incumbent_l1(xtr, ytr, xte, yte, np.geomspace(1e-3, 10, 4 if smoke else 14))
    return {"paths": paths, "sklearn_l1_logistic": sk, "hierarchy": _describe(h)}


def _describe(h: FeatureHierarchy) -> dict:
    return {"names": list(h.names), "parent": h.parent.tolist(),
            "flat_groups": [list(g) for g in h.flat_groups]}


def summarize(name: str, res: dict) -> list[list]:
    rows = []
    for method, path in res["paths"].items():
        best = max(path, key=lambda r: (r["accuracy"], -r["n_features"]))
        broken = sum(not r["consistent"] for r in path)
        small = [r for r in path if 0 < r["n_features"] <= 10]
        acc10 = max((r["accuracy"] for r in small), default=None)
        rows.append([name, method, best["accuracy"], best["n_features"], acc10,
                     f"{broken}/{len(path)}"])
    sk = res["sklearn_l1_logistic"]
    best = max(sk, key=lambda r: (r["accuracy"], -r["n_features"]))
    acc10 = max((r["accuracy"] for r in sk if 0 < r["n_features"] <= 10), default=None)
    rows.append([name, "sklearn L1-logistic", best["accuracy"], best["n_features"], acc10, "—"])
    return rows


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, (name, res) in zip(axes, results.items()):
        for method, p in res["paths"].items():
            pts = sorted((r["n_features"], r["accuracy"]) for r in p)
            ax.plot(*zip(*pts), marker="o", ms=3, label=f"{method} (prunekit)")
        pts = sorted((r["n_features"], r["accuracy"]) for r in res["sklearn_l1_logistic"])
        ax.plot(*zip(*pts), "k:", marker="x", ms=3, label="sklearn L1 logistic")
        ax.set(title=name, xlabel="features used", ylabel="test accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path / "apps_hierarchy_accuracy.png", dpi=110)
    plt.close(fig)
    _plot_selected(results, path)


def _pick(path: list[dict], target: int) -> dict:
    """The path point whose feature count is closest to ``target``."""
    return min(path, key=lambda r: (abs(r["n_features"] - target), -r["accuracy"]))


def _plot_selected(results: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(12, 3.6),
                             gridspec_kw={"width_ratios": [2.2, 1, 1, 1]})
    bc = results["breast_cancer"]
    names = bc["hierarchy"]["names"]
    sel = set(_pick(bc["paths"]["tree"], 9)["support"])
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
        chosen = _pick(dg["paths"][method], 40)
        _draw_pyramid(ax, set(chosen["support"]))
        ax.set_title(f"digits, {method}: {chosen['n_features']} feats, "
                     f"acc {chosen['accuracy']:.2f}", fontsize=7)
    fig.tight_layout()
    fig.savefig(path / "apps_hierarchy_selected.png", dpi=110)
    plt.close(fig)


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
    parser = bench_parser(__doc__, "200 samples, 3 values of α")
    args = parser.parse_args(argv)
    out, img = outputs(args, "hierarchy", RESULTS, IMG)
    with threadpool_limits(limits=1):
        results = {name: run(name, args.smoke) for name in ("breast_cancer", "digits")}
    rows = [row for name, res in results.items() for row in summarize(name, res)]
    print_table("accuracy vs features (best point; best with ≤ 10 features; broken trees)",
                ["data", "method", "best acc", "features", "acc ≤10 feats", "inconsistent"],
                rows)
    out = args.out or RESULTS / ("hierarchy_smoke.json" if args.smoke else "hierarchy.json")
    save_json(out, {"config": {"split": "stratified 70/30, seed 0", "scale": SCALE,
                               "smoke": args.smoke}, "results": results,
                    "smoke": args.smoke})
    if img is not None:
        plot(results, img)
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
