"""The common command line of every benchmark: ``--smoke``, ``--seed``, ``--threads``,
``--out``, ``--img-dir``; the exact command is kept for the result file.

A script builds its parser with :func:`parser`, adds its own options, and parses with
:meth:`BenchParser.parse`. Options that do not change *what* is computed (where files go,
progress bars, resuming) are declared with :meth:`BenchParser.add_operational`; a result
file's identity is the script and every other option's value.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
IMG = ROOT / "docs" / "img"
INTERNAL = ("bench_name", "argv", "command", "operational")


class BenchParser(argparse.ArgumentParser):
    """``argparse`` with the common options and the command line kept."""

    def __init__(self, name: str, doc: str, smoke_help: str = "tiny run, seconds",
                 seed: int | None = 0, threads: int | None = 1, img: bool = True) -> None:
        first = (doc or name).strip().splitlines()[0]
        super().__init__(prog=f"benchmarks/{name}.py", description=first)
        self.bench_name = name
        self.operational = {"out"}
        self.add_argument("--smoke", action="store_true", help=smoke_help)
        if seed is not None:
            self.add_argument("--seed", type=int, default=seed, help="random seed")
        if threads is not None:
            self.add_argument("--threads", type=int, default=threads,
                              help="torch intra-op CPU threads for the whole run")
        self.add_argument("--out", type=Path, default=None,
                          help=f"result JSON (default benchmarks/results/{name}[_smoke].json)")
        if img:
            self.add_operational("--img-dir", type=Path, default=None,
                                 help="folder for PNGs (default docs/img; smoke runs plot "
                                      "only when given)")

    def add_operational(self, *flags: str, **kwargs: Any) -> argparse.Action:
        """An option that changes where or how a run goes, not its numbers."""
        action = self.add_argument(*flags, **kwargs)
        self.operational.add(action.dest)
        return action

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        """Parse ``argv`` (default ``sys.argv[1:]``); record the command it amounts to."""
        argv = list(sys.argv[1:] if argv is None else argv)
        args = self.parse_args(argv)
        args.bench_name, args.argv = self.bench_name, argv
        args.command = shlex.join(["python", f"benchmarks/{self.bench_name}.py", *argv])
        args.operational = sorted(self.operational)
        if hasattr(args, "img_dir") and args.img_dir is None and not args.smoke:
            args.img_dir = IMG
        return args


def parser(name: str, doc: str, **kwargs: Any) -> BenchParser:
    """:class:`BenchParser` for ``benchmarks/<name>.py`` (see its arguments)."""
    return BenchParser(name, doc, **kwargs)


def out_path(args: argparse.Namespace, stem: str | None = None) -> Path:
    """``--out``, else ``benchmarks/results/<stem>[_smoke].json``."""
    if args.out is not None:
        return Path(args.out)
    stem = stem or args.bench_name
    return RESULTS / f"{stem}{'_smoke' if args.smoke else ''}.json"


def config(args: argparse.Namespace) -> dict[str, Any]:
    """Every option's value (JSON-ready), without the harness's own bookkeeping."""
    return {k: _plain(v) for k, v in vars(args).items() if k not in INTERNAL}


def identity(args: argparse.Namespace) -> dict[str, Any]:
    """What makes two runs the same computation: the script and its non-operational
    options."""
    skip = set(getattr(args, "operational", ()))
    return {"script": f"benchmarks/{args.bench_name}.py",
            "config": {k: v for k, v in config(args).items() if k not in skip}}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
