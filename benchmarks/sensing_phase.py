"""Phase transitions of structured compressive sensing (prunekit.apps).

Part 1 — the issue's setting: n = 256, k = 32 nonzeros in 4 blocks of 8, Gaussian
measurements, noiseless, 10 trials per m (2 shared CPU cores); success = relative error
< 1e-3; success rate vs m for plain
methods (scikit-learn's OMP — the incumbent —, our OMP, CoSaMP, L1 on the core) and
structured ones (block-OMP, multipath block-OMP, model-based CoSaMP, group lasso on the
core, and its iteratively reweighted version). Reports the smallest m with ≥ 90 %
success (target: ≤ 1.5·k = 48).

Part 2 — heat maps of success over (m/n, k/n) for plain, block and tree-sparse signals
(n = 64, blocks of 4), each with its structured methods and plain L1 / CoSaMP on the
same problems.

Usage::

    nice -n 10 .venv/bin/python benchmarks/sensing_phase.py          # ~20-30 min
    .venv/bin/python benchmarks/sensing_phase.py --smoke              # seconds
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from prunekit.apps.phase import PhaseConfig, phase_transition
from prunekit.apps.reporting import bench_parser, outputs, print_table, save_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
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


def block_curve(smoke: bool) -> dict:
    if smoke:
        cfg = PhaseConfig(n=64, structure="block", ks=(16,), ms=(40,), trials=1)
    else:
        cfg = PhaseConfig(n=256, structure="block", ks=(32,),
                          ms=(32, 40, 48, 56, 64, 80, 96, 128), trials=10)
    start = time.perf_counter()
    res = phase_transition(BLOCK_METHODS, cfg, extra={"sklearn-omp": sklearn_omp})
    res["seconds"] = time.perf_counter() - start
    rows = [[name, res["m_at_90"][name][0], *res["rates"][name][0]] for name in BLOCK_METHODS]
    print_table(f"success rate vs m (n={cfg.n}, k={cfg.ks[0]}, blocks of {cfg.block_size})",
                ["method", "m@90%", *map(str, cfg.ms)], rows)
    return res


def heatmaps(smoke: bool) -> dict:
    out = {}
    for structure, methods in HEATMAPS.items():
        if smoke:
            cfg = PhaseConfig(n=32, structure=structure, ks=(8,), ms=(24,), trials=1)
        else:
            cfg = PhaseConfig(n=64, structure=structure, block_size=4, ks=(4, 8, 12, 16),
                              ms=(8, 12, 16, 20, 24, 32, 40, 48), trials=6)
        out[structure] = phase_transition(methods, cfg)
        rows = [[name, *out[structure]["m_at_90"][name]] for name in methods]
        print_table(f"{structure}-sparse, n={cfg.n}: m at 90 % success per k",
                    ["method", *map(str, cfg.ks)], rows)
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curve(block: dict, path: Path) -> None:
    plt = _pyplot()
    cfg = block["config"]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for name in block["methods"]:
        ax.plot(cfg["ms"], block["rates"][name][0], marker="o", label=name)
    ax.axvline(1.5 * cfg["ks"][0], color="gray", ls="--", lw=1, label="target 1.5k")
    ax.set(xlabel="measurements m", ylabel="P(exact recovery)",
           title=f"n={cfg['n']}, k={cfg['ks'][0]} in blocks of {cfg['block_size']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path / "apps_phase_block.png", dpi=110)
    plt.close(fig)


def plot_heatmaps(maps: dict, path: Path) -> None:
    plt = _pyplot()
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
    fig.tight_layout()
    fig.savefig(path / "apps_phase_heatmaps.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, "tiny grid, seconds")
    parser.add_argument("--part", choices=("curve", "heatmaps", "all"), default="all",
                        help="curve -> sensing.json, heatmaps -> sensing_heatmaps.json")
    args = parser.parse_args(argv)
    out, img = outputs(args, "sensing", RESULTS, IMG)
    result: dict = {"smoke": args.smoke}
    with threadpool_limits(limits=1):
        if args.part in ("curve", "all"):
            block = block_curve(args.smoke)
            result.update(block_curve=block, target={"m_at_90_le": 1.5 * block["config"]["ks"][0]})
            save_json(out, result)
            if img is not None:
                plot_curve(block, img)
            best = {k: v[0] for k, v in block["m_at_90"].items()}
            print(f"m at 90 % success: {best}  (target <= {1.5 * block['config']['ks'][0]:g})")
        if args.part in ("heatmaps", "all"):
            maps = heatmaps(args.smoke)
            result["heatmaps"] = maps
            save_json(out.with_name(out.stem + "_heatmaps.json"),
                      {"heatmaps": maps, "smoke": args.smoke})
            if img is not None:
                plot_heatmaps(maps, img)
    print(f"wrote {out.parent}")
    return result


if __name__ == "__main__":
    main()
