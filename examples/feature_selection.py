"""Group and hierarchical feature selection on a real dataset (scikit-learn's diabetes).

Each of the 10 clinical features is expanded into a cubic-spline basis (a non-linear
additive model), so one *feature* is a *group* of 9 columns; the Group Lasso keeps or
drops whole features. Then a tree of groups — feature ⊂ family (lipids, ...) ⊂ domain
(demographics / blood serum) — selects coarse-to-fine: a feature can enter only if its
family and domain have. Writes ``docs/img/feature_selection_path.png``.

Run: ``python examples/feature_selection.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from prunekit.estimators import GroupLassoCV, TreeGroupLasso  # noqa: E402
from prunekit.sparsity import GroupLasso, Quadratic, alpha_max, regularization_path  # noqa: E402
from prunekit.sparsity import TreeGroupLasso as TreePenalty  # noqa: E402

BASIS = 9  # spline columns per feature (n_knots=8, degree=3, no bias column)
FAMILIES = {"body": ["age", "sex", "bmi", "bp"], "lipids": ["s1", "s2", "s3", "s4"],
            "other serum": ["s5", "s6"]}
DOMAINS = {"demographics": ["body"], "blood serum": ["lipids", "other serum"]}


def spline_design():
    data = load_diabetes()
    expand = make_pipeline(SplineTransformer(n_knots=8, degree=3, include_bias=False),
                           StandardScaler())
    B = expand.fit_transform(data.data)
    names = list(data.feature_names)
    groups = [list(range(k * BASIS, (k + 1) * BASIS)) for k in range(len(names))]
    return B, data.target, names, groups


def tree_groups(names: list[str], groups: list[list[int]]):
    """Leaves (one per feature), families, domains — nested, as TreeGroupLasso needs."""
    cols = dict(zip(names, groups))
    fams = {f: sum((cols[n] for n in members), []) for f, members in FAMILIES.items()}
    doms = {d: sum((fams[f] for f in members), []) for d, members in DOMAINS.items()}
    labels = names + list(fams) + list(doms)
    return labels, groups + list(fams.values()) + list(doms.values())


def group_path(B, y, groups):
    yc = y - y.mean()
    path = regularization_path(B, yc, Quadratic(), GroupLasso(groups, 1.0), n_alphas=40,
                               eps=1e-3, progress=True)
    norms = np.array([[np.linalg.norm(c[g]) for g in groups] for c in path.coefs])
    return path.alphas, norms


def plot(alphas, norms, names, chosen, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for k, name in enumerate(names):
        ax.semilogx(alphas, norms[:, k], label=name)
    ax.axvline(chosen, color="k", ls=":", lw=1, label="CV choice")
    ax.invert_xaxis()
    ax.set_xlabel("alpha (decreasing →)")
    ax.set_ylabel("‖β_g‖₂ of the feature's spline group")
    ax.set_title("Group Lasso path, diabetes (one group per feature)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    B, y, names, groups = spline_design()
    B_tr, B_te, y_tr, y_te = train_test_split(B, y, random_state=0)

    cv = GroupLassoCV(groups, n_alphas=30, cv=5).fit(B_tr, y_tr)
    kept = [names[g] for g in cv.selected_groups_]
    print(f"GroupLassoCV: alpha={cv.alpha_:.3g}, kept {len(kept)}/10 features: {kept}; "
          f"test R² = {cv.score(B_te, y_te):.3f}")

    alphas, norms = group_path(B_tr, y_tr, groups)
    out = ROOT / "docs/img/feature_selection_path.png"
    plot(alphas, norms, names, cv.alpha_, out)
    print(f"regularization path plot: {out.relative_to(ROOT)}")

    labels, tree = tree_groups(names, groups)
    top = alpha_max(B_tr - B_tr.mean(0), y_tr - y_tr.mean(), Quadratic(),
                    TreePenalty(tree, 1.0))
    for frac in (0.6, 0.3, 0.1, 0.03):
        alpha = frac * top
        est = TreeGroupLasso(tree, alpha=alpha, tol=1e-6).fit(B_tr, y_tr)
        active = [labels[g] for g in est.selected_groups_]
        print(f"TreeGroupLasso alpha={frac:g}·alpha_max: active nodes {active}; "
              f"test R² = {est.score(B_te, y_te):.3f}")


if __name__ == "__main__":
    main()
