"""``runs/<timestamp>/`` directories written atomically.

Everything of a run is written into a hidden temporary directory next to its final place
and renamed into ``runs/<timestamp>`` only when the run succeeded, so an interrupted or
failed run leaves nothing half-written behind (``os.rename`` within one file system is
atomic).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunDir:
    """``path`` is where to write now; ``final`` is set once the run has been published."""

    path: Path
    final: Path | None = None


def _free_name(root: Path, stamp: str) -> Path:
    candidate, k = root / stamp, 1
    while candidate.exists():
        k += 1
        candidate = root / f"{stamp}-{k}"
    return candidate


@contextlib.contextmanager
def new_run(root: str | Path = "runs") -> Iterator[RunDir]:
    """Yield a temporary run directory; publish it as ``root/<UTC timestamp>`` on success.

    On any exception the temporary directory is deleted (and ``root`` too, if this call
    created it and it is empty) and the exception propagates.
    """
    root = Path(root)
    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    run = RunDir(Path(tempfile.mkdtemp(prefix=f".tmp-{stamp}-", dir=root)))
    try:
        yield run
        final = _free_name(root, stamp)
        os.rename(run.path, final)
        run.final = final
    except BaseException:
        shutil.rmtree(run.path, ignore_errors=True)
        if created_root:
            with contextlib.suppress(OSError):
                root.rmdir()
        raise
