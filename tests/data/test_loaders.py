"""Data loaders: IDX round trips and validation, Fashion-MNIST search order, digits, WordNet."""

import gzip
import struct

import numpy as np
import pytest
import torch

from prunekit.data import fashion_mnist as fm
from prunekit.data import (
    find_fashion_mnist,
    load_digits_tensors,
    load_fashion_mnist,
    load_wordnet_glosses,
    read_idx,
    write_idx,
)
from prunekit.data.wordnet import parse_gloss_line


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64])
def test_idx_round_trip(tmp_path, suffix, dtype):
    arr = (np.arange(2 * 3 * 4) % 200).reshape(2, 3, 4).astype(dtype)
    path = write_idx(tmp_path / f"a{suffix}", arr)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, arr)


def test_idx_matches_hand_written_bytes(tmp_path):
    raw = bytes([0, 0, 0x08, 2]) + struct.pack(">II", 2, 3) + bytes(range(6))
    (tmp_path / "x").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", "magic"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"ab", "type code"),
        (b"\x00\x00\x08\x02" + struct.pack(">I", 2), "truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"abc", "holds 3 bytes"),
    ],
)
def test_idx_rejects_bad_files(tmp_path, raw, match):
    (tmp_path / "bad").write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        read_idx(tmp_path / "bad")


def test_idx_bad_gzip_and_missing(tmp_path):
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01")[:-6])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(tmp_path / "bad.gz")
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


def _fake_fashion(directory, n_train=5, n_test=3, gz=True):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ext = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        write_idx(directory / f"{split}-images-idx3-ubyte{ext}",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(directory / f"{split}-labels-idx1-ubyte{ext}",
                  rng.integers(0, 10, n, dtype=np.uint8))


@pytest.fixture
def no_system_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(fm, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "debian")
    monkeypatch.setattr(fm, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.delenv(fm.ENV_VAR, raising=False)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_from_user_root(tmp_path, no_system_copy, gz):
    _fake_fashion(tmp_path / "user", gz=gz)
    xtr, ytr, xte, yte = load_fashion_mnist(tmp_path / "user")
    assert xtr.shape == (5, 1, 28, 28) and xte.shape == (3, 1, 28, 28)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    raw = read_idx(tmp_path / "user" / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    torch.testing.assert_close(xtr[:, 0] * 255, torch.from_numpy(raw).float())
    assert yte.shape == (3,)


def test_fashion_search_order(tmp_path, monkeypatch, no_system_copy):
    _fake_fashion(tmp_path / "debian", n_train=4)
    _fake_fashion(tmp_path / "env" / "x", n_train=6)
    assert load_fashion_mnist()[0].shape[0] == 4  # the Debian package location
    monkeypatch.setenv(fm.ENV_VAR, str(tmp_path / "env" / "x"))
    assert load_fashion_mnist()[0].shape[0] == 6  # env var beats the Debian dir
    _fake_fashion(tmp_path / "tv" / "FashionMNIST" / "raw", n_train=7)
    assert load_fashion_mnist(tmp_path / "tv")[0].shape[0] == 7  # torchvision layout


def test_fashion_missing_says_how_and_never_downloads(tmp_path, monkeypatch, no_system_copy):
    def boom(*a, **k):
        raise AssertionError("must not download")

    monkeypatch.setattr(fm.urllib.request, "urlretrieve", boom)
    assert find_fashion_mnist(tmp_path / "empty") is None
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "empty")


def test_fashion_download_uses_mirror(tmp_path, monkeypatch, no_system_copy):
    src = tmp_path / "mirror"
    _fake_fashion(src)

    def fake_retrieve(url, dest):
        name = url.rsplit("/", 1)[1]
        (tmp_path / "dl").mkdir(exist_ok=True)
        dest.write_bytes((src / name).read_bytes())

    monkeypatch.setattr(fm.urllib.request, "urlretrieve", fake_retrieve)
    xtr, *_ = load_fashion_mnist(tmp_path / "dl", download=True)
    assert xtr.shape == (5, 1, 28, 28)


def test_fashion_label_count_mismatch(tmp_path, no_system_copy):
    _fake_fashion(tmp_path / "u")
    write_idx(tmp_path / "u" / "train-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="expected N"):
        load_fashion_mnist(tmp_path / "u")


def test_digits_tensors():
    xtr, ytr, xte, yte = load_digits_tensors(seed=1, test_size=0.2)
    assert xtr.shape[1:] == (1, 8, 8) and len(xtr) + len(xte) == 1797
    assert xtr.dtype == torch.float32 and 0 <= xtr.min() and xtr.max() == 1.0
    assert abs(len(xte) - 0.2 * 1797) <= 1 and set(ytr.tolist()) == set(range(10))
    again = load_digits_tensors(seed=1, test_size=0.2)
    assert torch.equal(again[0], xtr)
    assert not torch.equal(load_digits_tensors(seed=2, test_size=0.2)[1], ytr)
    with pytest.raises(ValueError, match="test_size"):
        load_digits_tensors(test_size=1.5)


LINE = ('00002684 03 n 02 object 0 physical_object 0 001 @ 00001930 n 0000 | a tangible '
        'and visible entity; an entity that can cast a shadow; "it was full of rackets"; '
        '"no ideas"  ')


def test_wordnet_parse_and_load(tmp_path, monkeypatch):
    g = parse_gloss_line(LINE)
    assert g.offset == 2684 and g.lemma == "object"
    assert g.definition == "a tangible and visible entity"
    assert g.examples == ("it was full of rackets", "no ideas")
    assert parse_gloss_line("  1 This software and database is being provided") is None
    header = "  1 license line\n  2 more\n"
    second = LINE.replace("object 0", "thing_x 0")
    (tmp_path / "data.noun").write_text(header + LINE + "\n" + second + "\n")
    out = load_wordnet_glosses(tmp_path)
    assert [x.lemma for x in out] == ["object", "thing x"]
    assert len(load_wordnet_glosses(tmp_path, limit=1)) == 1
    monkeypatch.setattr("prunekit.data.wordnet.DEBIAN_WORDNET_DIR", tmp_path / "none")
    monkeypatch.setattr("prunekit.data.wordnet._FALLBACK_DIRS", ())
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        load_wordnet_glosses(tmp_path / "none")
    from prunekit.data import wordnet_dir

    assert wordnet_dir(tmp_path) == tmp_path  # the directory with data.noun (and data.verb, ...)
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        wordnet_dir(tmp_path / "none")
    monkeypatch.setenv("PRUNEKIT_WORDNET", str(tmp_path))
    assert wordnet_dir() == tmp_path


def test_fashion_subset_is_a_seeded_permutation_with_the_full_test_set(tmp_path, no_system_copy):
    from prunekit.data import fashion_mnist_subset

    _fake_fashion(tmp_path / "user", n_train=8, n_test=3)
    xtr, ytr, _, _ = load_fashion_mnist(tmp_path / "user")
    (a, ya), (xt, yt) = fashion_mnist_subset(5, seed=1, root=tmp_path / "user")
    (b, yb), _ = fashion_mnist_subset(5, seed=1, root=tmp_path / "user")
    assert a.shape == (5, 1, 28, 28) and xt.shape == (3, 1, 28, 28)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    rows = {tuple(r.flatten().tolist()) for r in xtr}
    assert all(tuple(r.flatten().tolist()) in rows for r in a)
    (full, _), _ = fashion_mnist_subset(None, seed=0, root=tmp_path / "user")
    assert len(full) == 8


def test_synthetic_fashion_shapes_and_determinism():
    from prunekit.data import synthetic_fashion

    (x, y), (xt, yt) = synthetic_fashion(16, 8, seed=3)
    assert x.shape == (16, 1, 28, 28) and xt.shape == (8, 1, 28, 28)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and int(y.max()) < 10
    assert torch.equal(synthetic_fashion(16, 8, seed=3)[0][0], x)
