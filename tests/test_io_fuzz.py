"""Fuzz ``prunekit.load`` with tampered folders (hypothesis).

Five saved folders cover every structure a folder can replay (depth, channels,
input_feature, lowrank, branch, se_gate, connection), each with example inputs. One
change per example: a JSON value replaced, removed or added anywhere in the manifest,
plans and steps (wrong types, huge or negative numbers, out-of-range indices, traversal
paths, deep nesting); bytes truncated, flipped, appended or replaced in any file (the
weights' header too); a file swapped for a symbolic link to a valid copy outside the
folder, for a directory, or deleted. Usually the manifest's digests are refreshed too,
as someone tampering on purpose would do, so the plan checks themselves are reached.

Each load must either raise :class:`PlanError` naming a file, or load exactly: the
weights the file holds, the saved outputs bit for bit where the weights are untouched.
Nothing outside the folder is opened (``open``/``os.open``/``safe_open`` are watched, and
a canary folder of valid copies sits beside it), nothing is written, nothing is
unpickled, and after a failure the (shared) model the factory returned is as built.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import os
import pickle
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
import safetensors
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from io_support import X, pruned, refresh_digests
from safetensors.torch import load_file
from support import state_of

import prunekit
from prunekit.surgery import PlanError

torch.set_num_threads(1)  # tiny models: threads only cost (see support.one_thread)

KINDS = ("channels", "cnn", "mlp", "inception", "densenet")
TRAVERSAL = ["../outside/model.safetensors", "../outside/steps.json", "/etc/passwd",
             "outside/../plan.json", "link.json", "..", ".", "", "a/b", "model.safetensors/"]
LEAVES = (st.none() | st.booleans() | st.integers(-3, 70)
          | st.integers(-(2 ** 70), 2 ** 70) | st.floats(allow_nan=True, allow_infinity=True)
          | st.text(max_size=12) | st.sampled_from(TRAVERSAL + [
              "channels", "depth", "branch", "lowrank", "prunekit", "prunekit.plan", "empty",
              "pass", "cat", "Linear", "weight", "0", "3", "0.weight", "features.conv0"]))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """``{kind: (folder, factory, state, outputs)}`` saved once per module."""
    out = {}
    for kind in KINDS:
        factory, model, plans = pruned(kind)
        path = prunekit.save(model, tmp_path_factory.mktemp(kind) / "ckpt", plan=plans,
                             example_inputs=X)
        with torch.no_grad():
            out[kind] = (path, factory, state_of(model), model(X))
        prunekit.load(path, factory)  # every lazy import done before files are watched
    return out


# ------------------------------------------------------------------ tampering
def _paths(node, prefix=()):
    """Every path into a JSON tree (the root included)."""
    yield prefix
    items = node.items() if isinstance(node, dict) else \
        enumerate(node) if isinstance(node, list) else ()
    for k, child in items:
        yield from _paths(child, (*prefix, k))


class Raw(str):
    """JSON text written as is (deep nesting that ``json.dumps`` could not write)."""


DEEP = "[" * 50_000 + "]" * 50_000


def _edit_json(draw, data):
    """One random edit of parsed JSON; the new document (or Raw text)."""
    path = draw(st.sampled_from(list(_paths(data))))
    op = draw(st.sampled_from(["set", "set", "set", "delete", "add", "deep", "nudge"]))
    if not path:
        return draw(VALUES) if op != "deep" else Raw(DEEP)
    *up, last = path
    parent = data
    for k in up:
        parent = parent[k]
    if op == "delete":
        del parent[last]
    elif op == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(VALUES)
    elif op == "deep":
        parent[last] = "@@DEEP@@"
        return Raw(json.dumps(data).replace('"@@DEEP@@"', DEEP))
    elif op == "nudge" and isinstance(parent[last], int) and not isinstance(parent[last], bool):
        parent[last] += draw(st.sampled_from([-1, 1, -(10 ** 30), 10 ** 30]))
    else:
        parent[last] = draw(VALUES)
    return data


def _write_json(path, data):
    path.write_text(data if isinstance(data, Raw) else json.dumps(data))  # NaN kept as NaN


def _edit_bytes(draw, path):
    data = path.read_bytes()
    op = draw(st.sampled_from(["truncate", "flip", "append", "replace"]))
    if op == "truncate":
        data = data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    elif op == "flip" and data:
        raw = bytearray(data)
        for i in draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[i] ^= draw(st.integers(1, 255))
        data = bytes(raw)
    elif op == "append":
        data += draw(st.binary(min_size=1, max_size=64))
    else:
        data = draw(st.binary(max_size=256))
    path.write_bytes(data)


def _edit_header(draw, path):
    """Change the JSON header of a safetensors file, keeping the data bytes."""
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    new = _edit_json(draw, header)
    text = (new if isinstance(new, Raw) else json.dumps(new)).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def _edit_fs(draw, folder, name, outside):
    op = draw(st.sampled_from(["symlink", "symlink", "directory", "delete", "traversal"]))
    path = folder / name
    if op == "traversal":
        manifest = json.loads((folder / "manifest.json").read_text())
        field = draw(st.sampled_from(["weights", "plan", "steps", "example_inputs"]))
        value = draw(st.sampled_from(TRAVERSAL + [str(outside / name)]))
        if field == "example_inputs":
            manifest[field]["file"] = value
        else:
            manifest[field] = value
        os.symlink(outside / "steps.json", folder / "link.json")
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return
    path.unlink()
    if op == "symlink":
        os.symlink(outside / name, path)  # a valid copy of the very same file
    elif op == "directory":
        path.mkdir()


# ------------------------------------------------------------------ the watch
@contextlib.contextmanager
def watched(monkeypatch):
    """Record every file opened; fail on any unpickling."""
    opened: list[str] = []
    real = {"open": builtins.open, "os.open": os.open, "safe_open": safetensors.safe_open}

    def rec(fn):
        def wrapper(file, *a, **k):
            if isinstance(file, str | bytes | os.PathLike):
                opened.append(os.fsdecode(file))
            return fn(file, *a, **k)
        return wrapper

    def no_unpickling(*a, **k):
        raise AssertionError("load unpickled something")

    with monkeypatch.context() as mp:
        mp.setattr(builtins, "open", rec(real["open"]))
        mp.setattr(io, "open", rec(real["open"]))
        mp.setattr(os, "open", rec(real["os.open"]))
        mp.setattr(safetensors, "safe_open", rec(real["safe_open"]))
        for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"),
                             (pickle, "Unpickler")):
            mp.setattr(module, name, no_unpickling)
        yield opened


def _snapshot(root):
    return {p: (p.is_symlink(), p.is_file() and not p.is_symlink() and p.read_bytes())
            for p in sorted(root.rglob("*"))}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_tampered_folders_raise_plan_error_or_load_exactly(bases, monkeypatch, data):
    kind = data.draw(st.sampled_from(KINDS), label="folder")
    target = data.draw(st.sampled_from(  # the plans most often: their checks are the point
        ["steps.json"] * 3 + ["plan.json"] * 2 + ["manifest.json"] * 2
        + ["model.safetensors"] * 2 + ["inputs.safetensors"]), label="file")
    how = data.draw(st.sampled_from(["json", "json", "json", "bytes", "fs"]
                                    if target.endswith(".json") else
                                    ["bytes", "header", "header", "fs"]), label="how")
    refresh = data.draw(st.sampled_from([True, True, True, False]), label="refresh digests")
    base, factory, state, outputs = bases[kind]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = Path(shutil.copytree(base, root / "inside"))
        outside = Path(shutil.copytree(base, root / "outside"))
        (outside / "secret.txt").write_text("must never be read")
        if not (folder / target).exists():
            target = "plan.json"  # a folder without steps: its plans are in plan.json
        path = folder / target
        if how == "json":
            _write_json(path, _edit_json(data.draw, json.loads(path.read_text())))
        elif how == "bytes":
            _edit_bytes(data.draw, path)
        elif how == "header":
            _edit_header(data.draw, path)
        else:
            _edit_fs(data.draw, folder, target, outside)
        if refresh and target != "manifest.json" and how != "fs":
            with contextlib.suppress(Exception):  # the manifest itself may be broken
                refresh_digests(folder)
        _check_one_load(root, folder, outside, factory, state, outputs, monkeypatch)


def _check_one_load(root, folder, outside, factory, state, outputs, monkeypatch):
    before = _snapshot(root)
    shared = factory()
    pristine, text = state_of(shared), repr(shared)
    with watched(monkeypatch) as opened:
        try:
            model = prunekit.load(folder, lambda: shared)
        except PlanError as err:
            model = None
            assert err.file and str(err).startswith(err.file), str(err)
            assert len(str(err)) < 2000
    inside = folder.resolve()
    strays = [p for p in opened if inside not in Path(p).resolve().parents]
    assert not strays, f"opened outside the folder: {strays}"
    assert _snapshot(root) == before, "load changed files"
    if model is None:  # the factory's model is as it was built
        after = shared.state_dict()
        assert repr(shared) == text and after.keys() == pristine.keys()
        assert all(torch.equal(after[k], v) for k, v in pristine.items())
        return
    manifest = json.loads((folder / "manifest.json").read_text())
    stored = load_file(folder / manifest["weights"])
    got = model.state_dict()
    assert all(torch.equal(got[k], t.to(got[k].dtype)) for k, t in stored.items())
    if all(torch.equal(stored[k], state[k]) for k in stored) and stored.keys() <= state.keys():
        assert got.keys() == state.keys()
        with torch.no_grad():
            assert torch.equal(model(X), outputs)  # weights as saved: exactly the model
