"""A small JSON cache on disk, one file per (kind, device signature).

Location: ``$PRUNEKIT_CACHE`` if set, else ``~/.cache/prunekit``. A file is only used when
the signature stored inside it equals the current one and its format version matches;
otherwise it is ignored (and overwritten on the next save) — a changed CPU, thread count,
torch version or dtype never reuses stale timings. Writes are atomic (temp file + rename)
so two processes at worst lose each other's new entries, never corrupt the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prunekit.hardware.signature import signature_key

CACHE_VERSION = 1
ENV_VAR = "PRUNEKIT_CACHE"


def cache_dir() -> Path:
    """``$PRUNEKIT_CACHE`` or ``~/.cache/prunekit`` (not created until something is saved)."""
    custom = os.environ.get(ENV_VAR)
    return Path(custom) if custom else Path.home() / ".cache" / "prunekit"


@dataclass
class DiskCache:
    """``entries`` (a str -> JSON value dict) bound to one kind and device signature.

    >>> cache = DiskCache.open("latency", device_signature(spec))
    >>> cache.entries["conv..."] = 1.25; cache.save()
    """

    kind: str
    signature: dict[str, Any]
    entries: dict[str, Any] = field(default_factory=dict)
    persist: bool = True

    @property
    def path(self) -> Path:
        return cache_dir() / f"{self.kind}-{signature_key(self.signature)}.json"

    @classmethod
    def open(cls, kind: str, signature: dict[str, Any], persist: bool = True) -> DiskCache:
        """Load the entries stored for ``signature`` (none if absent, stale or unreadable)."""
        cache = cls(kind, dict(signature), persist=persist)
        if persist:
            cache.entries = _read(cache.path, cache.signature)
        return cache

    def save(self) -> None:
        """Write the entries atomically (no-op when ``persist`` is False)."""
        if not self.persist:
            return
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": CACHE_VERSION, "kind": self.kind, "signature": self.signature,
               "entries": self.entries}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=0, sort_keys=True)
        os.replace(tmp, path)


def _read(path: Path, signature: dict[str, Any]) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if (not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION
            or doc.get("signature") != signature or not isinstance(doc.get("entries"), dict)):
        return {}
    return doc["entries"]
