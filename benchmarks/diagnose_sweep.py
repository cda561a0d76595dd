"""Redundancy and collapse on Fashion-MNIST: a λ sweep of proximal group lasso on a small CNN.

For each λ the same small CNN (same initialization) is trained from scratch with
:class:`prunekit.methods.ProximalGroupLasso` (SGD, the exact group soft-threshold after
every step), its exactly-zero channels are removed by surgery, and the pruned model is
evaluated on the full test set and diagnosed with :func:`prunekit.diagnose.diagnose`
(weight/activation similarity, effective rank, dead channels) on calibration images.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/diagnose_sweep.py   # 1 thread
    .venv/bin/python benchmarks/diagnose_sweep.py --smoke                         # seconds
    .venv/bin/python benchmarks/diagnose_sweep.py --replot benchmarks/results/diagnose_sweep.json

Writes ``benchmarks/results/diagnose_sweep[_smoke].json`` and ``docs/img/diagnose_*.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
LAMS = [0.0, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2]
console = Console()


def small_cnn(width: int = 16) -> nn.Module:
    """conv(1→w)-BN-ReLU-pool, conv(w→2w)-BN-ReLU-pool, FC(2w·7·7→64)-ReLU, FC(64→10)."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * width * 49, 64), nn.ReLU(),
        nn.Linear(64, 10))


def load_data(args):
    from prunekit.data import fashion_mnist_subset, synthetic_fashion

    if args.smoke:
        return synthetic_fashion(256, 128, seed=0)
    return fashion_mnist_subset(args.train_size, seed=args.seed)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="synthetic data, tiny run")
    p.add_argument("--lams", type=float, nargs="+", default=LAMS)
    p.add_argument("--train-size", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=0.05, help="SGD lr (also the prox step)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--calib-size", type=int, default=1000)
    p.add_argument("--collapse-drop", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--results-dir", type=Path, default=RESULTS)
    p.add_argument("--img-dir", type=Path, default=IMG)
    p.add_argument("--replot", type=Path, default=None,
                   help="only redraw the PNGs from this results JSON")
    args = p.parse_args(argv)
    if args.smoke:
        args.lams, args.epochs, args.width, args.calib_size = [0.0, 1e-3, 1.0], 2, 4, 64
        args.batch_size = 32
    return args


def draw(sweep, img_dir: Path, suffix: str) -> dict[str, Path]:
    """The sweep curve and per-layer/per-group bars at λ = 0 and at the largest safe λ."""
    from prunekit.diagnose import plot_diagnosis

    img_dir.mkdir(parents=True, exist_ok=True)
    images = {"sweep": sweep.plot(img_dir / f"diagnose_sweep{suffix}.png")}
    for tag, rec in (("dense", sweep.records[0]),
                     ("safe", next(r for r in sweep.records if r.lam == sweep.safe_lam))):
        for kind in ("layers", "groups"):
            images[f"{kind}_{tag}"] = plot_diagnosis(
                rec.diagnosis, img_dir / f"diagnose_{kind}_{tag}{suffix}.png", kind=kind,
                title=f"Redundancy per {kind[:-1]}, λ={rec.lam:g} (accuracy {rec.accuracy:.3f})")
    return images


def replot(path: Path, img_dir: Path) -> dict[str, Path]:
    """Redraw the PNGs from a saved results JSON (no training)."""
    from prunekit.diagnose import SweepResult

    saved = json.loads(path.read_text())
    suffix = "_smoke" if saved["config"]["smoke"] else ""
    return draw(SweepResult.from_dict(saved["sweep"]), img_dir, suffix)


def main(argv=None) -> dict:
    from prunekit.diagnose import lambda_sweep
    from prunekit.measure.machine import machine_info
    from prunekit.methods import FitConfig, evaluate, fit

    args = parse_args(argv)
    if args.replot is not None:
        return {"images": {k: str(v) for k, v in replot(args.replot, args.img_dir).items()}}
    torch.set_num_threads(args.threads)
    console.log(f"config: {vars(args)}")
    train, test = load_data(args)
    calib = list(torch.split(train[0][: args.calib_size], 250))
    cfg = FitConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                    progress=not args.smoke)
    timings: dict[float, float] = {}

    def build() -> nn.Module:
        torch.manual_seed(args.seed)
        return small_cnn(args.width)

    def train_fn(model, opt) -> None:
        start = time.process_time()
        fit(model, train, cfg, optimizer=opt)
        timings[opt.lam] = time.process_time() - start
        console.log(f"λ={opt.lam:g}: trained in {timings[opt.lam]:.0f} CPU s, "
                    f"{sum(len(v) for v in opt.zero_groups().values())} channels at zero")

    def eval_fn(model) -> float:
        return evaluate(model, test)

    sweep = lambda_sweep(
        build, train_fn, eval_fn, args.lams, calibration=calib, example_inputs=train[0][:2],
        make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9),
        collapse_drop=args.collapse_drop, progress=not args.smoke)
    console.print(sweep.table())
    suffix = "_smoke" if args.smoke else ""
    images = draw(sweep, args.img_dir, suffix)
    results = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "machine": machine_info(), "model": "small_cnn", "train_cpu_s": {
                   str(k): v for k, v in timings.items()},
               "sweep": sweep.to_dict(),
               "table": [r.measures() for r in sweep.records],
               "images": {k: str(v) for k, v in images.items()}}
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"diagnose_sweep{suffix}.json"
    out.write_text(json.dumps(results, indent=1, allow_nan=False))
    console.log(f"wrote {out}; collapse λ = {sweep.collapse_lam}, safe λ = {sweep.safe_lam}")
    return results


if __name__ == "__main__":
    main()
