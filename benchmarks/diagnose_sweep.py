"""Redundancy and collapse on Fashion-MNIST: a λ sweep of proximal group lasso on a small CNN.

For each λ the same small CNN (same initialization) is trained from scratch with
:class:`prunekit.methods.ProximalGroupLasso` (SGD, the exact group soft-threshold after
every step), its exactly-zero channels are removed by surgery, and the pruned model is
diagnosed with :func:`prunekit.diagnose.diagnose` (weight/activation similarity, effective
rank, dead channels) on calibration images from the training split. The sweep's accuracy
(and so its "safe" and "collapse" λ) is read on a validation split carved from the
training images; each λ's model is also scored once on the test set (``test_accuracy``).

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/diagnose_sweep.py   # 1 thread
    python benchmarks/diagnose_sweep.py --smoke                         # seconds
    python benchmarks/diagnose_sweep.py --replot benchmarks/results/diagnose_sweep.json

Writes ``benchmarks/results/diagnose_sweep[_smoke].json`` and ``docs/img/diagnose_*.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

if __package__ in (None, ""):  # run as a file: make `benchmarks.harness` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402

LAMS = [0.0, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2]
console = Console()


def small_cnn(width: int = 16) -> nn.Module:
    """conv(1→w)-BN-ReLU-pool, conv(w→2w)-BN-ReLU-pool, FC(2w·7·7→64)-ReLU, FC(64→10)."""
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * width * 49, 64), nn.ReLU(),
        nn.Linear(64, 10))


def parse_args(argv=None) -> argparse.Namespace:
    p = harness.parser("diagnose_sweep", __doc__, smoke_help="synthetic data, tiny run")
    p.add_argument("--lams", type=float, nargs="+", default=LAMS)
    p.add_argument("--train-size", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--lr", type=float, default=0.05, help="SGD lr (also the prox step)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--calib-size", type=int, default=1000)
    p.add_argument("--collapse-drop", type=float, default=0.02)
    p.add_operational("--progress", action="store_true", help="progress bars")
    p.add_operational("--replot", type=Path, default=None,
                      help="only redraw the PNGs from this results JSON")
    args = p.parse(argv)
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
    suffix = "_smoke" if saved["provenance"]["config"]["smoke"] else ""
    return draw(SweepResult.from_dict(saved["sweep"]), img_dir, suffix)


def main(argv=None) -> dict:
    from prunekit.diagnose import lambda_sweep
    from prunekit.methods import FitConfig, evaluate, fit

    args = parse_args(argv)
    if args.replot is not None:
        img = args.img_dir or harness.IMG
        return {"images": {k: str(v) for k, v in replot(args.replot, img).items()}}
    with harness.session(args) as rec:
        data = harness.fashion_mnist(args.train_size, args.seed, args.smoke)
        calib = list(torch.split(data.train[0][: args.calib_size], 250))
        cfg = FitConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                        progress=args.progress)
        timings: dict[float, float] = {}
        test_accuracy: dict[str, float] = {}
        order = sorted(args.lams)

        def build() -> nn.Module:
            harness.seed_all(args.seed)
            return small_cnn(args.width)

        def train_fn(model, opt) -> None:
            start = time.process_time()
            fit(model, data.train, cfg, optimizer=opt)
            timings[opt.lam] = time.process_time() - start
            console.log(f"λ={opt.lam:g}: trained in {timings[opt.lam]:.0f} CPU s, "
                        f"{sum(len(v) for v in opt.zero_groups().values())} channels at zero")

        def eval_fn(model) -> float:  # the sweep's reading: validation accuracy
            lam = order[len(test_accuracy)]
            test_accuracy[f"{lam:g}"] = data.evaluate(f"λ={lam:g}",
                                                      lambda t: evaluate(model, t))
            return evaluate(model, data.val)

        sweep = lambda_sweep(
            build, train_fn, eval_fn, args.lams, calibration=calib,
            example_inputs=data.train[0][:2], collapse_drop=args.collapse_drop,
            make_optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=args.lr, momentum=0.9),
            progress=args.progress)
        console.print(sweep.table())
        results = {"model": "small_cnn", "accuracy_split": "val",
                   "train_cpu_s": {str(k): v for k, v in timings.items()},
                   "test_accuracy": test_accuracy, "sweep": sweep.to_dict(),
                   "table": [r.measures() for r in sweep.records]}
        if args.img_dir is not None:
            images = draw(sweep, args.img_dir, "_smoke" if args.smoke else "")
            results["images"] = {k: str(v) for k, v in images.items()}
        out = rec.write(harness.out_path(args), results, splits=data)
    console.log(f"wrote {out}; collapse λ = {sweep.collapse_lam}, safe λ = {sweep.safe_lam}")
    return results


if __name__ == "__main__":
    main()
