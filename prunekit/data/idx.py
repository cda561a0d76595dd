"""Read and write the IDX format of (Fashion-)MNIST, plain or gzip-compressed.

An IDX file is: two zero bytes, a type code, the number of dimensions ``d``, ``d``
big-endian ``uint32`` sizes, then the data in C order, big-endian.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

# IDX type code -> big-endian numpy dtype
_DTYPES: dict[int, str] = {
    0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8",
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}


def _read_bytes(path: Path) -> bytes:
    """Whole file content, transparently gunzipped (detected by the gzip magic)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt gzip stream ({err})") from err
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into a numpy array of its native dtype.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the magic number is wrong, the type code unknown, or the payload size does not
        match the header (a truncated download, for instance); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (magic must start with two zero bytes)")
    code, ndim = raw[2], raw[3]
    if code not in _DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim == 0 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: header truncated or zero dimensions (ndim={ndim})")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_DTYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = raw[4 + 4 * ndim :]
    if len(payload) != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes of data) but the file "
            f"holds {len(payload)} bytes; the file is truncated or corrupt"
        )
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    path = Path(path)
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"array dtype {arr.dtype} has no IDX type code")
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"array must have 1..255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = arr.astype(_DTYPES[code]).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as fh:
        fh.write(header + data)
    return path
