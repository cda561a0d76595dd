"""Compressive imaging of a real photograph: wavelet-tree sparsity vs plain sparsity.

scikit-learn's bundled ``china.jpg`` (grayscale, centre crop, block-averaged to
64×64) is measured by a scrambled partial DCT (y = A x, m rows) and recovered in an
orthonormal Haar basis (4 levels). Two families, each compared on its own
(``--family``):

- ``lasso`` (default): ``l1`` (plain L1 on the detail coefficients) against
  ``tree-lasso`` (tree group lasso over the wavelet quadtree), the same FISTA solver and
  iteration cap per fit, the same grid of α/α_max;
- ``cosamp``: plain against tree model-based CoSaMP, the same iterations, the same grid
  of K/m.

Both methods of a family get the same A, y and the same parameter grid. The parameter is
chosen per m **without looking at the image**: each grid value is fitted on 80 % of the
measurements and scored by its residual on the other 20 % (cross-validation on
measurements); the chosen value is refitted on all m measurements, and only that
recovery is compared with the photograph (PSNR: the one read of the "test" per reported
number). A choice at a grid edge marks the result invalid (widen the grid and re-run).
Reported: PSNR vs m, and for each m of the plain method the m the tree method needs for
that PSNR (interpolated on its PSNR-vs-m curve). One photo, one operator draw
(``--seed``): a measured saving, not a verdict over seeds.

Usage::

    nice -n 10 python benchmarks/image_cs.py          # ~15 CPU-minutes
    python benchmarks/image_cs.py --smoke              # seconds (16×16)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import plots, tables  # noqa: E402
from benchmarks.harness.rules import Comparison, Method  # noqa: E402
from prunekit.apps.image import (  # noqa: E402
    HaarBasis,
    load_photo,
    psnr,
    recover_image,
    sensing_matrix,
)
from prunekit.apps.operators import make_operator  # noqa: E402

FAMILIES = {  # family -> (plain method, tree method, parameter name, grid, iterations/fit)
    "lasso": ("l1", "tree-lasso", "alpha_ratio",  # 0.3 was an edge at m = 205: widened
              (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001, 0.0003), 2000),
    "cosamp": ("cosamp", "cosamp-tree", "k_over_m",
               (0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3), 10),
}
VAL_FRACTION = 0.2


def comparison(family: str, grid: tuple[float, ...], m: int) -> Comparison:
    plain, tree, param, _, iters = FAMILIES[family]
    return Comparison(f"image CS at m={m}, {plain} vs {tree}", [
        Method(tree, iters, {param: grid}), Method(plain, iters, {param: grid})], "iterations")


def select_and_refit(method: str, param: str, grid: tuple[float, ...], a: np.ndarray,
                     y: np.ndarray, basis: HaarBasis, seed: int,
                     cmp: Comparison) -> dict[str, Any]:
    """Cross-validate ``method``'s parameter on held-out measurements, refit on all."""
    rng = np.random.default_rng([seed, len(y)])
    val = np.zeros(len(y), dtype=bool)
    val[rng.choice(len(y), max(1, round(VAL_FRACTION * len(y))), replace=False)] = True
    phi_fit, phi_val = sensing_matrix(a[~val], basis), sensing_matrix(a[val], basis)
    scores = []
    for p in grid:
        c = recover_image(method, phi_fit, y[~val], basis, p)
        scores.append(({param: p}, float(np.mean((y[val] - phi_val @ c) ** 2))))
    choice = cmp.select(method, scores, higher_is_better=False)
    c = recover_image(method, sensing_matrix(a, basis), y, basis, choice.values[param])
    return {"choice": choice.to_dict(), "coef": c}


def run(side: int, level: int, fractions: tuple[float, ...], image: int, seed: int,
        family: str, grid: tuple[float, ...]) -> dict[str, Any]:
    img = load_photo(side, image)
    basis, n = HaarBasis(side, level), side * side
    plain, tree, param, _, _ = FAMILIES[family]
    rows, best_images, comparisons = [], {}, []
    for frac in fractions:
        m = int(round(frac * n))
        a = make_operator("dct", m, n, rng=seed).dense()
        y = a @ img.ravel()
        cmp = comparison(family, grid, m)
        for method in (plain, tree):
            res = select_and_refit(method, param, grid, a, y, basis, seed, cmp)
            x = basis.synthesis(res["coef"])
            rows.append({"m": m, "m_over_n": m / n, "method": method,
                         "psnr": psnr(x, img.ravel()), "param": res["choice"]["values"][param],
                         "selection": res["choice"]})
            best_images[(method, m)] = x.reshape(side, side)
        comparisons.append(cmp)
    return {"rows": rows, "images": best_images, "photo": img, "comparisons": comparisons}


def measurements_to_match(rows: list[dict], plain: str, tree: str) -> list[dict]:
    """For each point of ``plain``, the m at which ``tree`` reaches its PSNR.

    When the tree method already beats it at the smallest m of the grid, the true m is
    below the grid: ``m_tree`` is that smallest m and ``bound`` is "at most" (so the
    saving is a lower bound).
    """
    ms = sorted({r["m"] for r in rows})
    curve = [next(r["psnr"] for r in rows if r["m"] == m and r["method"] == tree) for m in ms]
    out = []
    for r in (r for r in rows if r["method"] == plain):
        m_needed, bound = _interp_m(ms, curve, r["psnr"])
        saving = None if m_needed is None else 1 - m_needed / r["m"]
        out.append({"m_plain": r["m"], "psnr_plain": r["psnr"], "m_tree": m_needed,
                    "bound": bound, "saving": saving})
    return out


def _interp_m(ms: list[int], psnrs: list[float], target: float
              ) -> tuple[float | None, str | None]:
    """First m (linear interpolation) where the curve reaches ``target``, and its kind."""
    if psnrs[0] >= target:
        return float(ms[0]), "at most"
    for j in range(1, len(ms)):
        if psnrs[j] >= target:
            t = (target - psnrs[j - 1]) / (psnrs[j] - psnrs[j - 1])
            return float(ms[j - 1] + t * (ms[j] - ms[j - 1])), "interpolated"
    return None, None


def plot(res: dict, methods: tuple[str, str], path: Path) -> None:
    plt = plots.pyplot()
    rows = res["rows"]
    fig = plt.figure(figsize=(11, 3.6))
    ax = fig.add_subplot(1, 4, 1)
    for method in methods:
        pts = sorted((r["m"], r["psnr"]) for r in rows if r["method"] == method)
        ax.plot(*zip(*pts), marker="o", label=method)
    ax.set(xlabel="measurements m", ylabel="PSNR (dB)", title="photo, CV-chosen α")
    ax.legend(fontsize=7)
    ms = sorted({r["m"] for r in rows})
    m_show = ms[len(ms) // 2]
    panels = [("original", res["photo"])] + [
        (f"{meth}, m={m_show}", res["images"][(meth, m_show)]) for meth in methods]
    for j, (title, im) in enumerate(panels):
        ax = fig.add_subplot(1, 4, j + 2)
        ax.imshow(np.clip(im, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    plots.save(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = harness.parser("image_cs", __doc__, smoke_help="16×16 image, 2 values of m",
                            threads=1)
    parser.add_argument("--image", type=int, default=0, help="0: china, 1: flower")
    parser.add_argument("--family", choices=sorted(FAMILIES), default="lasso")
    parser.add_argument("--grid", type=float, nargs="+", default=None,
                        help="the parameter grid of both methods (default: the family's)")
    args = parser.parse(argv)
    plain, tree, param, default_grid, _ = FAMILIES[args.family]
    grid = tuple(args.grid or default_grid)
    side, level, fractions = (16, 2, (0.25, 0.5)) if args.smoke else \
        (64, 4, (0.05, 0.1, 0.15, 0.2, 0.3))
    stem = "image_cs" if args.family == "lasso" else f"image_cs_{args.family}"
    from threadpoolctl import threadpool_limits

    with harness.session(args) as rec, threadpool_limits(limits=1):
        res = run(side, level, fractions, args.image, args.seed, args.family, grid)
        match = measurements_to_match(res["rows"], plain, tree)
        payload = {"config": {"side": side, "level": level, "fractions": fractions,
                              "image": args.image, "operator": "scrambled partial DCT",
                              "wavelet": "haar", "family": args.family, "param": param,
                              "grid": grid, "selection": f"CV on measurements, "
                              f"{VAL_FRACTION:.0%} held out, refit on all m"},
                   "rows": res["rows"], "match": match, "target": {"saving_ge": 0.4}}
        ms = sorted({r["m"] for r in res["rows"]})
        table = [[m, *[next(r["psnr"] for r in res["rows"] if r["m"] == m and
                            r["method"] == meth) for meth in (plain, tree)],
                  *[next(r["param"] for r in res["rows"] if r["m"] == m and
                         r["method"] == meth) for meth in (plain, tree)]] for m in ms]
        payload["table"] = {"columns": ["m", f"PSNR {plain}", f"PSNR {tree}",
                                        f"{param} {plain}", f"{param} {tree}"], "rows": table}
        tables.show(f"PSNR (dB) vs m, {side}×{side} photo (CV-chosen {param})",
                    payload["table"]["columns"], table)
        tables.show(f"measurements {tree} needs for {plain}'s PSNR",
                    ["m (plain)", "PSNR plain", "m (tree)", "", "saving"],
                    [[r["m_plain"], r["psnr_plain"], r["m_tree"], r["bound"], r["saving"]]
                     for r in match])
        out = rec.write(harness.out_path(args, stem), payload, comparison=res["comparisons"])
        if args.img_dir is not None:
            plot(res, (plain, tree), args.img_dir / f"apps_{stem}.png")
    print(f"wrote {out}")
    return {"rows": res["rows"], "match": match,
            "valid": all(c.validity()["valid"] for c in res["comparisons"])}


if __name__ == "__main__":
    main()
