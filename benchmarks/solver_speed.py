"""Group Lasso solver speed: prunekit vs skglm vs the `group-lasso` package.

Problem: ``1/(2n)‖y − Xw‖² + alpha·Σ_g ‖w_g‖₂`` (no intercept, unit group weights), on

* synthetic data, n=1000, p=5000, 1000 groups of 5, AR(1)-correlated columns (ρ=0.5),
  10% of groups active, at ``alpha_max/10`` and ``alpha_max/100``;
* a real scikit-learn dataset: diabetes, each of its 10 features expanded into a cubic
  spline basis of 9 columns — one group per original feature (an additive model).

Each solver is run with a schedule of tolerances (or iteration counts) after one warm-up
call (numba compilation is not timed); every run's objective is recomputed here with one
formula. Times are the process's CPU time (``time.process_time``; wall time is recorded
too): on a shared machine CPU time is what stays comparable between solvers. Run it
single-threaded (``OMP_NUM_THREADS=1``) so that CPU time equals the time an idle machine
would take; every solver here then runs on one core. "Time to target" is the fastest
run whose objective is within 1e-6 (relative) of the best objective any solver found. Results go to
``benchmarks/results/solver_speed.json`` (plus machine info) and a PNG of suboptimality
vs time to ``docs/img/sparsity_solver_speed.png``.

Usage::

    python benchmarks/solver_speed.py            # full run (a few minutes on 2 cores)
    python benchmarks/solver_speed.py --smoke    # seconds; used by the test suite
    python benchmarks/solver_speed.py --device cuda --large   # torch FISTA, n = 100,000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, benchmarks/ is sys.path[0]; a sibling module there could
# shadow a real package (numba imports `coverage`). Look up modules from the repo root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))

from prunekit.sparsity import (  # noqa: E402
    FISTA,
    BlockCD,
    GroupLasso,
    Quadratic,
    alpha_max,
)

TARGET = 1e-6
TOLS = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10]
ITERS = [10, 30, 100, 300, 1000, 3000]


# --------------------------------------------------------------------------- problems
def synthetic(n: int, p: int, size: int, seed: int = 0):
    """AR(1)-correlated Gaussian design, 10% active groups, SNR about 3."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, p))
    X[:, 0] = rng.standard_normal(n)
    noise = rng.standard_normal((n, p))
    for j in range(1, p):
        X[:, j] = 0.5 * X[:, j - 1] + np.sqrt(1 - 0.25) * noise[:, j]
    w = np.zeros(p)
    active = rng.choice(p // size, max(1, p // size // 10), replace=False)
    for g in active:
        w[g * size:(g + 1) * size] = rng.standard_normal(size)
    y = X @ w
    y += rng.standard_normal(n) * np.std(y) / 3
    return X, y, size


def diabetes_splines():
    """sklearn's diabetes, each feature → 9 cubic-spline columns (one group each)."""
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    X, y = load_diabetes(return_X_y=True)
    B = SplineTransformer(n_knots=8, degree=3, include_bias=False).fit_transform(X)  # 9 per feature
    B = StandardScaler().fit_transform(B)
    return B, y - y.mean(), 9


# --------------------------------------------------------------------------- solvers
def objective(X, y, w, groups, alpha) -> float:
    r = y - X @ w
    return float(r @ r / (2 * len(y)) + alpha * sum(np.linalg.norm(w[g]) for g in groups))


def run_ours_bcd(X, y, size, alpha, tol):
    pen = GroupLasso([list(range(i, i + size)) for i in range(0, X.shape[1], size)], alpha)
    return BlockCD(tol=tol, max_iter=200).solve(X, y, Quadratic(), pen).coef


def run_ours_fista(X, y, size, alpha, tol):
    pen = GroupLasso([list(range(i, i + size)) for i in range(0, X.shape[1], size)], alpha)
    return FISTA(tol=tol, max_iter=20000).solve(X, y, Quadratic(), pen).coef


def run_skglm(X, y, size, alpha, tol):
    from skglm import GroupLasso as SkGroupLasso

    est = SkGroupLasso(groups=size, alpha=alpha, tol=tol, max_iter=200, max_epochs=100_000,
                       fit_intercept=False)
    return est.fit(X, y).coef_


def run_group_lasso_pkg(X, y, size, alpha, n_iter):
    import warnings

    from group_lasso import GroupLasso as GLPkg

    labels = np.arange(X.shape[1]) // size
    est = GLPkg(groups=labels, group_reg=alpha, l1_reg=0.0, n_iter=n_iter, tol=0.0,
                scale_reg="none", fit_intercept=False, supress_warning=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return np.asarray(est.coef_).ravel()


# name -> (runner, schedule); each schedule entry is one timed run
SOLVERS: dict[str, tuple[Callable, list]] = {
    "prunekit BlockCD": (run_ours_bcd, TOLS),
    "prunekit FISTA": (run_ours_fista, TOLS[:6]),
    "skglm GroupLasso": (run_skglm, TOLS),
    "group-lasso (pkg)": (run_group_lasso_pkg, ITERS),
}


def time_runs(runner, schedule, X, y, size, alpha, groups, budget_s):
    runner(X[:50, :10 * size], y[:50], size, alpha, schedule[0])  # warm-up / compile
    runs = []
    for setting in schedule:
        t0, c0 = time.perf_counter(), time.process_time()
        w = runner(X, y, size, alpha, setting)
        wall, dt = time.perf_counter() - t0, time.process_time() - c0
        runs.append({"setting": setting, "time_s": dt, "wall_s": wall,
                     "objective": objective(X, y, w, groups, alpha),
                     "nonzero_groups": int(sum(np.any(w[g] != 0) for g in groups))})
        if dt > budget_s:
            break
    return runs


def bench_problem(name, X, y, size, divisor, solvers, budget_s):
    groups = [list(range(i, i + size)) for i in range(0, X.shape[1], size)]
    top = alpha_max(X, y, Quadratic(), GroupLasso(groups, 1.0))
    alpha = top / divisor
    out = {"problem": name, "n": X.shape[0], "p": X.shape[1], "group_size": size,
           "alpha": alpha, "alpha_max_over": divisor, "solvers": {}}
    for label, (runner, schedule) in solvers.items():
        out["solvers"][label] = {"runs": time_runs(runner, schedule, X, y, size, alpha, groups,
                                                   budget_s)}
    best = min(r["objective"] for s in out["solvers"].values() for r in s["runs"])
    out["best_objective"] = best
    for s in out["solvers"].values():
        ok = [r["time_s"] for r in s["runs"] if (r["objective"] - best) / abs(best) <= TARGET]
        s["time_to_target_s"] = min(ok) if ok else None
    return out


# --------------------------------------------------------------------------- torch / GPU
def bench_torch(device: str, n: int, p: int, size: int, divisor: float):
    """Torch FISTA on ``device`` vs skglm (CPU) on the same large problem."""
    import torch

    X, y, size = synthetic(n, p, size, seed=1)
    groups = [list(range(i, i + size)) for i in range(0, p, size)]
    pen1 = GroupLasso(groups, 1.0)
    alpha = alpha_max(X, y, Quadratic(), pen1) / divisor
    Xt = torch.tensor(X, device=device)
    yt = torch.tensor(y, device=device)
    res = {"problem": f"synthetic n={n} p={p}", "device": device, "alpha_max_over": divisor,
           "runs": {}}
    FISTA(tol=1e-2, max_iter=5).solve(Xt, yt, Quadratic(), pen1.with_alpha(alpha))  # warm-up
    for label, fn in (("prunekit FISTA torch", lambda t: FISTA(tol=t, max_iter=20000).solve(
            Xt, yt, Quadratic(), pen1.with_alpha(alpha)).coef.cpu().numpy()),
                      ("prunekit BlockCD", lambda t: run_ours_bcd(X, y, size, alpha, t)),
                      ("skglm GroupLasso", lambda t: run_skglm(X, y, size, alpha, t))):
        runs = []
        for tol in (1e-4, 1e-6, 1e-8):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            w = fn(tol)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            runs.append({"tol": tol, "time_s": time.perf_counter() - t0,
                         "objective": objective(X, y, w, groups, alpha)})
        res["runs"][label] = runs
    best = min(r["objective"] for v in res["runs"].values() for r in v)
    res["best_objective"] = best
    res["time_to_target_s"] = {
        k: min([r["time_s"] for r in v if (r["objective"] - best) / abs(best) <= TARGET],
               default=None) for k, v in res["runs"].items()}
    return res


# --------------------------------------------------------------------------- output
def machine_info() -> dict:
    import torch

    cpu = platform.processor()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(), "timer": "time.process_time (CPU seconds)",
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "python": sys.version.split()[0],
            "torch": torch.__version__, "numpy": np.__version__,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    for mod in ("skglm", "group_lasso", "numba"):
        try:
            info[mod] = __import__(mod).__version__
        except (ImportError, AttributeError):
            info[mod] = None
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def ratio_table(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        ref = r["solvers"].get("skglm GroupLasso", {}).get("time_to_target_s")
        for label, s in r["solvers"].items():
            t = s["time_to_target_s"]
            rows.append({"problem": f"{r['problem']} α_max/{r['alpha_max_over']:g}",
                         "solver": label, "time_to_target_s": t,
                         "speedup_vs_skglm": (ref / t) if (t and ref) else None})
    return rows


def print_table(rows: list[dict]) -> str:
    lines = ["| problem | solver | CPU time to 1e-6 rel. (s) | skglm time / solver time |",
             "|---|---|---|---|"]
    for r in rows:
        t = "not reached" if r["time_to_target_s"] is None else f"{r['time_to_target_s']:.3f}"
        s = "—" if r["speedup_vs_skglm"] is None else f"{r['speedup_vs_skglm']:.2f}×"
        lines.append(f"| {r['problem']} | {r['solver']} | {t} | {s} |")
    text = "\n".join(lines)
    print(text)
    return text


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 3.6), squeeze=False)
    for ax, r in zip(axes[0], results):
        best = r["best_objective"]
        for label, s in r["solvers"].items():
            t = [run["time_s"] for run in s["runs"]]
            sub = [max((run["objective"] - best) / abs(best), 1e-16) for run in s["runs"]]
            ax.loglog(t, sub, "o-", label=label, ms=3)
        ax.axhline(TARGET, color="gray", ls=":", lw=1)
        ax.set_title(f"{r['problem']} α_max/{r['alpha_max_over']:g}", fontsize=9)
        ax.set_xlabel("CPU time (s)")
        ax.set_ylabel("relative suboptimality")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny problems, seconds")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/solver_speed.json")
    ap.add_argument("--plot", type=Path, default=ROOT / "docs/img/sparsity_solver_speed.png")
    ap.add_argument("--device", default=None, help="also run torch FISTA here (cpu, cuda)")
    ap.add_argument("--large", action="store_true", help="torch run at n=100,000 (GPU)")
    ap.add_argument("--only-torch", action="store_true", help="skip the CPU comparison")
    args = ap.parse_args(argv)
    from rich.progress import track

    if args.smoke:  # our solvers and the pure-numpy package only: no JIT warm-ups to pay
        n, p, budget = 120, 300, 5.0
        solvers = {k: (SOLVERS[k][0], SOLVERS[k][1][:2])
                   for k in ("prunekit BlockCD", "prunekit FISTA", "group-lasso (pkg)")}
    else:
        n, p, budget = 1000, 5000, 60.0
        solvers = SOLVERS
    X, y, size = synthetic(n, p, 5)
    Xr, yr, sr = diabetes_splines()
    problems = [("synthetic", X, y, size, 10.0), ("synthetic", X, y, size, 100.0),
                ("diabetes-splines", Xr, yr, sr, 10.0), ("diabetes-splines", Xr, yr, sr, 100.0)]
    if args.smoke:
        problems = problems[:1] + problems[2:3]
    if args.only_torch:
        problems = []
    results = [bench_problem(name, Xp, yp, s, div, solvers, budget)
               for name, Xp, yp, s, div in track(problems, description="solver speed")]
    report = {"benchmark": "solver_speed", "config": {"smoke": args.smoke, "target_rel": TARGET,
                                                      "tols": TOLS, "group_lasso_iters": ITERS},
              "machine": machine_info(), "results": results, "table": ratio_table(results)}
    if args.device:
        n_big, p_big = (100_000, 5000) if args.large else (2000, 1000)
        report["torch"] = bench_torch(args.device, n_big, p_big, 5, 10.0)
        print(json.dumps(report["torch"]["time_to_target_s"], indent=1))
    report["table_markdown"] = print_table(report["table"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    if results and not args.smoke:
        plot(results, args.plot)
    return report


if __name__ == "__main__":
    main()
