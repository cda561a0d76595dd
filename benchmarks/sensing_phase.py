"""Phase transitions of structured compressive sensing (prunekit.apps).

Part 1 (``--part curve``, ``sensing.json``) — the issue's setting: n = 256, k = 32
nonzeros in 4 blocks of 8, Gaussian measurements, noiseless, 10 trials per m; success =
relative error < 1e-3; success rate vs m for plain
methods (scikit-learn's OMP — the incumbent —, our OMP, CoSaMP, L1 on the core) and
structured ones (block-OMP, multipath block-OMP, model-based CoSaMP, group lasso on the
core, and its iteratively reweighted version). Reports the smallest m with ≥ 90 %
success (target: ≤ 1.5·k = 48).

Part 2 (``--part heatmaps``, ``sensing_heatmaps.json``) — heat maps of success over
(m/n, k/n) for plain, block and tree-sparse signals (n = 64, blocks of 4), each with its
structured methods and plain L1 / CoSaMP on the same problems.

Fairness: every method solves the same problems (same A, x, y per trial, seeded by
``--seed``); nothing is tuned on the outcome (the lasso methods run a fixed α/α_max
continuation with an exact-fit refit); every greedy method, the incumbent included, is
told the true sparsity k. No method has a training budget or a grid to choose from.

Usage::

    nice -n 10 python benchmarks/sensing_phase.py                    # curve, ~10 CPU-min
    nice -n 10 python benchmarks/sensing_phase.py --part heatmaps    # ~15 CPU-min
    python benchmarks/sensing_phase.py --smoke                        # seconds
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import plots, tables  # noqa: E402
from prunekit.apps.phase import PhaseConfig, phase_transition  # noqa: E402

BLOCK_METHODS = ["sklearn-omp", "omp", "cosamp", "l1", "block-omp", "block-mmp",
                 "cosamp-block", "group-lasso", "group-lasso-rw"]
HEATMAPS = {  # structure -> methods drawn as heat maps
    "sparse": ["l1", "cosamp"],
    "block": ["l1", "group-lasso", "group-lasso-rw", "block-mmp", "cosamp-block"],
    "tree": ["l1", "tree-lasso", "cosamp-tree"],
}


def sklearn_omp(a: np.ndarray, y: np.ndarray, info) -> np.ndarray:
    """The incumbent: scikit-learn's orthogonal_mp told the true number of nonzeros."""
    from sklearn.linear_model import orthogonal_mp

    return orthogonal_mp(a, y, n_nonzero_coefs=min(info.k, a.shape[0]))


def block_curve(smoke: bool, seed: int) -> dict:
    if smoke:
        cfg = PhaseConfig(n=64, structure="block", ks=(16,), ms=(40,), trials=1, seed=seed)
    else:
        cfg = PhaseConfig(n=256, structure="block", ks=(32,),
                          ms=(32, 40, 48, 56, 64, 80, 96, 128), trials=10, seed=seed)
    start = time.perf_counter()
    res = phase_transition(BLOCK_METHODS, cfg, extra={"sklearn-omp": sklearn_omp},
                           progress=not smoke)
    res["seconds"] = time.perf_counter() - start
    rows = [[name, res["m_at_90"][name][0], *res["rates"][name][0]] for name in BLOCK_METHODS]
    res["table"] = {"columns": ["method", "m@90%", *map(str, cfg.ms)], "rows": rows}
    tables.show(f"success rate vs m (n={cfg.n}, k={cfg.ks[0]}, blocks of {cfg.block_size})",
                res["table"]["columns"], rows)
    return res


def heatmaps(smoke: bool, seed: int) -> dict:
    out = {}
    for structure, methods in HEATMAPS.items():
        if smoke:
            cfg = PhaseConfig(n=32, structure=structure, ks=(8,), ms=(24,), trials=1, seed=seed)
        else:
            cfg = PhaseConfig(n=64, structure=structure, block_size=4, ks=(4, 8, 12, 16),
                              ms=(8, 12, 16, 20, 24, 32, 40, 48), trials=6, seed=seed)
        out[structure] = phase_transition(methods, cfg, progress=not smoke)
        rows = [[name, *out[structure]["m_at_90"][name]] for name in methods]
        tables.show(f"{structure}-sparse, n={cfg.n}: m at 90 % success per k",
                    ["method", *map(str, cfg.ks)], rows)
    return out


def plot_curve(block: dict, path: Path) -> None:
    plt = plots.pyplot()
    cfg = block["config"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name in block["methods"]:
        ax.plot(cfg["ms"], block["rates"][name][0], marker="o", label=name)
    ax.axvline(1.5 * cfg["ks"][0], color="gray", ls="--", lw=1, label="target 1.5k")
    ax.set(xlabel="measurements m", ylabel="P(exact recovery)",
           title=f"n={cfg['n']}, k={cfg['ks'][0]} in blocks of {cfg['block_size']}")
    ax.legend(fontsize=7)
    plots.save(fig, path / "apps_phase_block.png")


def plot_heatmaps(maps: dict, path: Path) -> None:
    plt = plots.pyplot()
    cols = max(len(v["methods"]) for v in maps.values())
    fig, axes = plt.subplots(len(maps), cols, figsize=(3 * cols, 2.6 * len(maps)),
                             squeeze=False)
    for r, (structure, res) in enumerate(maps.items()):
        c = res["config"]
        for j in range(cols):
            ax = axes[r][j]
            if j >= len(res["methods"]):
                ax.axis("off")
                continue
            name = res["methods"][j]
            ax.imshow(np.array(res["rates"][name]), origin="lower", vmin=0, vmax=1,
                      cmap="viridis", aspect="auto",
                      extent=(0, len(c["ms"]), 0, len(c["ks"])))
            ax.set_xticks(np.arange(len(c["ms"])) + 0.5,
                          [f"{m / c['n']:.2f}" for m in c["ms"]], fontsize=6)
            ax.set_yticks(np.arange(len(c["ks"])) + 0.5,
                          [f"{k / c['n']:.2f}" for k in c["ks"]], fontsize=6)
            ax.set_title(f"{structure}: {name}", fontsize=8)
            ax.set_xlabel("m/n", fontsize=7)
            ax.set_ylabel("k/n", fontsize=7)
    plots.save(fig, path / "apps_phase_heatmaps.png")


def main(argv: list[str] | None = None) -> dict:
    parser = harness.parser("sensing_phase", __doc__, smoke_help="tiny grid, seconds")
    parser.add_argument("--part", choices=("curve", "heatmaps"), default="curve",
                        help="curve -> sensing.json, heatmaps -> sensing_heatmaps.json")
    args = parser.parse(argv)
    from threadpoolctl import threadpool_limits

    with harness.session(args) as rec, threadpool_limits(limits=1):
        if args.part == "curve":
            block = block_curve(args.smoke, args.seed)
            result = {"block_curve": block,
                      "target": {"m_at_90_le": 1.5 * block["config"]["ks"][0]}}
            out = rec.write(harness.out_path(args, "sensing"), result)
            if args.img_dir is not None:
                plot_curve(block, args.img_dir)
        else:
            result = {"heatmaps": heatmaps(args.smoke, args.seed)}
            out = rec.write(harness.out_path(args, "sensing_heatmaps"), result)
            if args.img_dir is not None:
                plot_heatmaps(result["heatmaps"], args.img_dir)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
