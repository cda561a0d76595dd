"""Small helpers shared by the apps benchmarks: machine info, JSON, tables, BLAS threads."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """The project's machine description plus the BLAS thread pools in use."""
    from threadpoolctl import threadpool_info

    from prunekit.measure.machine import machine_info

    info = machine_info()
    info["blas_threads"] = {p.get("internal_api", "?"): p.get("num_threads")
                            for p in threadpool_info()}
    info["omp_num_threads_env"] = os.environ.get("OMP_NUM_THREADS")
    return info


def save_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (with a ``machine`` entry added) as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1, default=_plain))
    return path


def _plain(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table on the terminal (numbers formatted to 3 significant digits)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in columns:
        table.add_column(str(c))
    for row in rows:
        table.add_row(*[_fmt(v) for v in row])
    Console().print(table)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return "—" if v is None else str(v)


def bench_parser(doc: str, smoke_help: str) -> argparse.ArgumentParser:
    """The common command line of the apps benchmarks: --smoke, --out, --img."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=smoke_help)
    parser.add_argument("--out", type=Path, default=None, help="JSON path")
    parser.add_argument("--img", type=Path, default=None,
                        help="folder for PNGs (default docs/img; smoke runs plot only if given)")
    return parser


def outputs(args: argparse.Namespace, stem: str, results: Path, img: Path
            ) -> tuple[Path, Path | None]:
    """(JSON path, PNG folder or None): ``<stem>_smoke.json`` in smoke mode."""
    out = args.out or results / (f"{stem}_smoke.json" if args.smoke else f"{stem}.json")
    folder = args.img or (None if args.smoke else img)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    return out, folder
