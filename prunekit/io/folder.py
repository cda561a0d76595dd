"""Files of a saved folder, read and written without ever leaving it.

A saved folder names its files in ``manifest.json``. Each name must be a plain file name
(letters, digits, ``._-``; no separators, no ``..``, no absolute path) of a *regular*
file directly inside the folder: symbolic links are refused altogether (whatever they
point to), so nothing outside the folder is ever opened. JSON files are read through a
descriptor opened with ``O_NOFOLLOW`` and capped in size before parsing; when the
manifest records SHA-256 digests, every file is checked against its digest first.

Writing goes to a fresh temporary file in the folder that is then renamed over the
name, so a symbolic link left under that name is replaced, not followed.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from prunekit.surgery.validate import PlanError

NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
MIB = 1 << 20
_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | \
    getattr(os, "O_BINARY", 0)


def check_name(name: object, file: str, field: str) -> str:
    """``name`` is a plain file name (PlanError naming ``file`` and ``field`` otherwise)."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
        raise PlanError(f"{shown} is not a plain file name inside the folder (no "
                        "directories, no '..', no absolute paths)", file=file, field=field)
    return name


class Folder:
    """A directory the loader reads from (or the saver writes to), confined to it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise PlanError("not a prunekit model directory (no manifest.json)",
                            file=str(self.path))
        self.real = self.path.resolve(strict=True)

    # ------------------------------------------------------------------ reading
    def file(self, name: str) -> Path:
        """The path of regular file ``name`` in the folder (PlanError if it is missing, a
        symbolic link, not a regular file, or resolves elsewhere)."""
        path = self.path / name
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise PlanError("missing from the folder", file=name) from None
        except OSError as err:
            raise PlanError(f"cannot be read ({err.strerror})", file=name) from None
        if stat.S_ISLNK(st.st_mode):
            raise PlanError("is a symbolic link; a saved folder holds plain files only",
                            file=name)
        if not stat.S_ISREG(st.st_mode):
            raise PlanError("is not a regular file", file=name)
        if path.resolve(strict=True).parent != self.real:
            raise PlanError("resolves outside the folder", file=name)
        return path

    def read(self, name: str, cap: int, sha256: str | None = None) -> bytes:
        """The bytes of ``name``, at most ``cap`` of them, checked against ``sha256``."""
        data = b"".join(self._chunks(name, cap))
        _check_digest(name, hashlib.sha256(data).hexdigest(), sha256)
        return data

    def verify(self, name: str, sha256: str | None) -> Path:
        """The checked path of ``name`` after comparing its digest (streamed) when one
        is recorded; for files too large to hold in memory (the weights)."""
        path = self.file(name)
        if sha256 is not None:
            digest = hashlib.sha256()
            for chunk in self._chunks(name, None):
                digest.update(chunk)
            _check_digest(name, digest.hexdigest(), sha256)
        return path

    def _chunks(self, name: str, cap: int | None):  # noqa: ANN202 (a generator of bytes)
        path = self.file(name)
        try:
            fd = os.open(path, _FLAGS)
        except OSError as err:
            raise PlanError(f"cannot be read ({err.strerror})", file=name) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PlanError("is not a regular file", file=name)
            if cap is not None and st.st_size > cap:
                raise PlanError(f"is {st.st_size} bytes; at most {cap} are read for this file",
                                file=name)
            total = 0
            while chunk := os.read(fd, 4 * MIB):
                total += len(chunk)
                if cap is not None and total > cap:
                    raise PlanError(f"grew beyond {cap} bytes while being read", file=name)
                yield chunk
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ writing
    def write(self, name: str, fill: Callable[[Path], None]) -> str:
        """Write file ``name`` with ``fill(path)`` through a temporary file renamed over
        it (a symbolic link of that name is replaced, not followed); its SHA-256."""
        check_name(name, name, "")
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=f"-{name}")
        os.close(fd)
        try:
            fill(Path(tmp))
            digest = hashlib.sha256()
            with open(tmp, "rb") as fh:
                while chunk := fh.read(4 * MIB):
                    digest.update(chunk)
            os.replace(tmp, self.path / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest.hexdigest()

    def write_bytes(self, name: str, data: bytes) -> str:
        return self.write(name, lambda p: p.write_bytes(data))


def _check_digest(name: str, got: str, expected: str | None) -> None:
    if expected is not None and got != expected:
        raise PlanError("SHA-256 differs from the one in manifest.json (the file changed "
                        "after it was saved, or is damaged)", file=name)
