"""``manifest.json``: what identifies a saved folder and names its files.

::

    {"format": "prunekit", "version": 1,
     "weights": "model.safetensors", "plan": "plan.json",
     "steps": "steps.json",                      (when structures beyond channels were cut)
     "structures": ["depth", "channels"],
     "example_inputs": {"file": "inputs.safetensors", "kind": "args", "names": ["0"],
                        "outputs": 1},           (when save() was given example inputs)
     "sha256": {"model.safetensors": "...", ...},  (every file above)
     "model_class": "...", "torch": "...", "channels_removed": 12}   (information only)

Folders written before ``example_inputs`` and ``sha256`` existed have neither; they load
as before. Fields not listed are ignored (information only); the ones that are read are
checked for type and range here, before any file they name is opened.
"""

from __future__ import annotations

from typing import Any

from prunekit.io.folder import MIB, Folder, check_name
from prunekit.surgery import validate as v
from prunekit.surgery.validate import PlanError

FORMAT = "prunekit"
VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_CAP = 1 * MIB
KINDS = ("tensor", "args", "kwargs")
MAX_INPUTS = 1024


def read_manifest(path: Any) -> dict[str, Any]:
    """The manifest of a saved model, checked; :class:`PlanError` (a ValueError) if
    ``path`` is not one of ours or the manifest is malformed."""
    folder = path if isinstance(path, Folder) else Folder(path)
    if not (folder.path / MANIFEST).exists() and not (folder.path / MANIFEST).is_symlink():
        raise PlanError(f"not a prunekit model directory (no {MANIFEST})",
                        file=str(folder.path))
    try:
        data = v.parse_json(folder.read(MANIFEST, MANIFEST_CAP))
    except PlanError as err:
        raise err.located(MANIFEST) from None
    try:
        return check(data)
    except PlanError as err:
        raise err.located(MANIFEST) from None


def check(data: Any) -> dict[str, Any]:
    """``data`` as a manifest this prunekit reads (PlanError naming the field)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PlanError("not a prunekit manifest (format tag missing)", field="format")
    if data.get("version") != VERSION or isinstance(data.get("version"), bool):
        raise PlanError(f"unsupported prunekit format version "
                        f"{str(data.get('version'))[:20]!r}; this prunekit reads {VERSION}",
                        field="version")
    v.record(data, "", ("weights", "plan"), set(data))
    named = [check_name(data["weights"], MANIFEST, "weights"),
             check_name(data["plan"], MANIFEST, "plan")]
    if "steps" in data:
        named.append(check_name(data["steps"], MANIFEST, "steps"))
    if "structures" in data:
        v.items(data["structures"], "structures", v.string, max_len=10_000)
    if "example_inputs" in data:
        named.append(_check_inputs(data["example_inputs"]))
    if "sha256" in data:
        digests = v.mapping(data["sha256"], "sha256", _digest, max_len=64)
        missing = [n for n in named if n not in digests]
        if missing:
            raise PlanError(f"no digest for {missing}", field="sha256")
    return data


def _check_inputs(data: Any) -> str:
    d = v.record(data, "example_inputs", ("file", "kind", "names", "outputs"))
    v.string(d["kind"], "example_inputs.kind", KINDS)
    names = v.items(d["names"], "example_inputs.names", v.string, max_len=MAX_INPUTS)
    if len(set(names)) != len(names) or (d["kind"] == "tensor" and len(names) != 1):
        raise PlanError("names must be distinct (one for kind 'tensor')",
                        field="example_inputs.names")
    v.integer(d["outputs"], "example_inputs.outputs", 0, MAX_INPUTS)
    return check_name(d["file"], MANIFEST, "example_inputs.file")


def _digest(value: Any, field: str) -> str:
    text = v.string(value, field, max_len=64)
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise PlanError("expected 64 lowercase hex digits (a SHA-256)", field=field)
    return text


def digest_of(manifest: dict[str, Any], name: str) -> str | None:
    """The recorded SHA-256 of file ``name`` (None for folders saved without digests)."""
    return manifest.get("sha256", {}).get(name)
