"""Structured vs unstructured identification of a 20-state networked system.

10 nodes × 2 states on a ring, 10 inputs each driving 2 nodes, 20 local sensors (two
per node, known placement). For each noise level (w and v at that fraction of the
noise-free signal's std) and data length, over several random systems:

- ``unstructured``   N4SID + least squares, any basis (the baseline);
- ``c-basis + LS``   the basis fixed by the known C pattern, least squares for A, B
                     (support = blocks above 10 % of the largest; an ablation);
- ``structured``     the C-pattern basis + adaptive group lasso on the core (BIC).

Metrics: node-level support F1 of (A, B); parameter errors after the best similarity
the structure still allows (any T for the unstructured model, block-diagonal T for the
other two); NRMSE of noise-free responses to held-out inputs. For reference the table
also shows ``oracle-aligned LS``: the unstructured model mapped by the best T computed
*from the true system* and thresholded at the best level in hindsight — unavailable in
practice, an upper bound for least squares.

The structured model's group-lasso level is chosen by BIC on the identification data
itself (no held-out data and no ground truth is used to tune any method); the random
systems are seeded (``--seed`` offsets them).

Usage::

    nice -n 10 python benchmarks/state_space_id.py          # ~10 CPU-minutes
    python benchmarks/state_space_id.py --smoke              # seconds
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from rich.progress import track

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.harness import plots, tables  # noqa: E402
from prunekit.apps.ssid import identify_structured, identify_unstructured  # noqa: E402
from prunekit.apps.ssid_metrics import (  # noqa: E402
    align,
    block_support,
    parameter_errors,
    prediction_error,
    support_f1,
)
from prunekit.apps.state_space import networked_system, simulate  # noqa: E402

SENSORS = np.repeat(np.arange(10), 2)
METHODS = ("unstructured", "c-basis + LS", "structured", "oracle-aligned LS")


def one_trial(noise: float, steps: int, seed: int) -> dict[str, dict]:
    rng = np.random.default_rng([seed, steps])
    system = networked_system(rng=rng)
    data = simulate(system, rng.standard_normal((steps, 10)), noise, rng)
    u_test = rng.standard_normal((300, 10))
    truth = block_support(system, system.node)
    start = time.perf_counter()
    models = {"unstructured": identify_unstructured(data.u, data.y, 20),
              "c-basis + LS": identify_structured(data.u, data.y, SENSORS, 2, sparse=False),
              "structured": identify_structured(data.u, data.y, SENSORS, 2)}
    seconds = time.perf_counter() - start
    out = {}
    for name, est in models.items():
        block = None if name == "unstructured" else system.node
        threshold = 0.1 if name == "c-basis + LS" else 0.0
        out[name] = {"f1": support_f1(truth, block_support(est, system.node, threshold)),
                     **parameter_errors(align(est, system, block), system),
                     "nrmse": prediction_error(est, system, u_test)}
    oracle = align(models["unstructured"], system)
    out["oracle-aligned LS"] = {
        "f1": max(support_f1(truth, block_support(oracle, system.node, t))
                  for t in np.linspace(0, 0.5, 51)),
        **parameter_errors(oracle, system), "nrmse": out["unstructured"]["nrmse"]}
    out["seconds"] = seconds
    return out


def sweep(noises, lengths, seeds, offset: int = 0) -> list[dict]:
    cells = [(nz, T) for T in lengths for nz in noises]
    rows = []
    for noise, steps in track(cells, description="identification"):
        trials = [one_trial(noise, steps, offset + s) for s in range(seeds)]
        for name in METHODS:
            agg = {k: float(np.median([t[name][k] for t in trials]))
                   for k in ("f1", "A", "B", "C", "nrmse")}
            agg["f1_min"] = float(min(t[name]["f1"] for t in trials))
            rows.append({"noise": noise, "T": steps, "method": name, **agg})
        rows.append({"noise": noise, "T": steps, "method": "_seconds",
                     "seconds": float(np.mean([t["seconds"] for t in trials]))})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    plt = plots.pyplot()
    lengths = sorted({r["T"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for T, ls in zip(lengths, ("-", "--", ":")):
        for name, color in zip(METHODS, ("C0", "C1", "C2", "gray")):
            pts = sorted((r["noise"], r["f1"], r["nrmse"]) for r in rows
                         if r["T"] == T and r["method"] == name)
            noise, f1, nrmse = zip(*pts)
            axes[0].plot(noise, f1, ls, color=color, marker="o", label=f"{name}, T={T}")
            if name != "oracle-aligned LS":
                axes[1].plot(noise, nrmse, ls, color=color, marker="o")
    axes[0].axhline(0.95, color="k", lw=0.5)
    axes[0].set(xlabel="relative noise", ylabel="support F1 (median)", ylim=(0, 1.05))
    axes[1].set(xlabel="relative noise", ylabel="held-out NRMSE (median)", yscale="log")
    axes[0].legend(fontsize=6)
    plots.save(fig, path / "apps_state_space.png")


COLUMNS = ["T", "noise", "method", "F1", "F1 min", "err A", "err B", "err C", "NRMSE"]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = harness.parser("state_space_id", __doc__, smoke_help="one noise level, one seed")
    args = parser.parse(argv)
    noises, lengths, seeds = ((0.05,), (300,), 1) if args.smoke else \
        ((0.0, 0.02, 0.05, 0.1, 0.2), (400, 1000), 3)
    from threadpoolctl import threadpool_limits

    with harness.session(args) as rec, threadpool_limits(limits=1):
        rows = sweep(noises, lengths, seeds, args.seed)
        shown = [r for r in rows if r["method"] != "_seconds"]
        table = [[r["T"], r["noise"], r["method"], r["f1"], r["f1_min"], r["A"], r["B"],
                  r["C"], r["nrmse"]] for r in shown]
        tables.show("identification of a 20-state networked system (medians over systems)",
                    COLUMNS, table)
        config = {"n_nodes": 10, "state_dim": 2, "n_inputs": 10, "nodes_per_input": 2,
                  "sensors": "2 per node, known placement", "noises": noises,
                  "lengths": lengths, "systems_per_cell": seeds, "horizon": 3}
        out = rec.write(harness.out_path(args, "state_space"),
                        {"config": config, "rows": rows,
                         "table": {"columns": COLUMNS, "rows": table}})
        if args.img_dir is not None:
            plot(shown, args.img_dir)
    print(f"wrote {out}")
    return rows


if __name__ == "__main__":
    main()
