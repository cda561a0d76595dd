"""Layer functionals: linear, convolution, normalization, embedding, PReLU.

Each rule couples the input's channel dim with the weight's input dim, makes the output
channel dim carry the weight's output atoms and couples biases and norm statistics with
them. Kernel dims and other dims no cut may touch are fixed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prunekit.graph.labels import Block, Label, dim_atoms, singles
from prunekit.graph.rules.common import arg
from prunekit.graph.rules.registry import op_name, rule


def _without(lab: Label, dims: set[int]) -> list[Block]:
    return [b for b in lab.blocks if not set(b.dims) & dims]


def _bias(st: Any, bias: Any, atoms: np.ndarray) -> None:
    if bias is not None:
        st.uf.union(dim_atoms(st.uf, st.label(bias), 0), atoms)


@rule("linear")
def linear(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """``y = x W^T + b``: x[..., i] ~ W[:, i]; y[..., o] carries W[o, :] ~ b[o]."""
    x, w = args[0], arg(args, kwargs, 1, "weight")
    bias = arg(args, kwargs, 2, "bias")
    xl, wl = st.label(x), st.label(w)
    st.uf.union(dim_atoms(st.uf, xl, -1), dim_atoms(st.uf, wl, 1))
    w0 = dim_atoms(st.uf, wl, 0)
    _bias(st, bias, w0)
    nd = x.ndim
    blocks = _without(singles(st.uf, xl), {nd - 1}) + [Block((nd - 1,), w0)]
    st.set(out, Label(tuple(out.shape), blocks))


def _grouped(st: Any, x_atoms: np.ndarray, out_atoms: np.ndarray, groups: int) -> None:
    """Grouped conv: a whole conv group (its inputs and outputs) is one unit."""
    xs = x_atoms.reshape(groups, -1)
    os_ = out_atoms.reshape(groups, -1)
    st.uf.union(np.concatenate([xs, os_], axis=1), xs[:, :1])


@rule("conv1d", "conv2d", "conv3d", "convolution", "_convolution")
def conv(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Convolution (grouped and depthwise included)."""
    x, w = args[0], arg(args, kwargs, 1, "weight")
    bias = arg(args, kwargs, 2, "bias")
    name = op_name(func)
    if name.endswith("convolution") and arg(args, kwargs, 6, "transposed", False):
        st.barrier(name, args, kwargs, "transposed aten convolution")
        return
    groups = arg(args, kwargs, 8 if name.endswith("convolution") else 6, "groups", 1)
    cdim = 1 if x.ndim == w.ndim else 0
    xl, wl = st.label(x), st.label(w)
    x_atoms = dim_atoms(st.uf, xl, cdim)
    w0 = dim_atoms(st.uf, wl, 0)
    if groups == 1:
        st.uf.union(x_atoms, dim_atoms(st.uf, wl, 1))
    else:
        st.uf.fix(dim_atoms(st.uf, wl, 1))
        _grouped(st, x_atoms, w0, groups)
    for d in range(2, w.ndim):
        st.uf.fix(dim_atoms(st.uf, wl, d))
    _bias(st, bias, w0)
    blocks = [Block((cdim,), w0)] + ([b for b in singles(st.uf, xl).blocks if b.dims == (0,)]
                                     if cdim == 1 else [])
    st.set(out, Label(tuple(out.shape), blocks))


@rule("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
def conv_transpose(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Transposed convolution: weight is (in, out/groups, k...)."""
    x, w = args[0], args[1]
    bias = arg(args, kwargs, 2, "bias")
    groups = arg(args, kwargs, 6, "groups", 1)
    cdim = 1 if x.ndim == w.ndim else 0
    xl, wl = st.label(x), st.label(w)
    x_atoms = dim_atoms(st.uf, xl, cdim)
    st.uf.union(x_atoms, dim_atoms(st.uf, wl, 0))
    for d in range(2, w.ndim):
        st.uf.fix(dim_atoms(st.uf, wl, d))
    if groups == 1:
        out_atoms = dim_atoms(st.uf, wl, 1)
    else:
        st.uf.fix(dim_atoms(st.uf, wl, 1))
        out_atoms = st.uf.new(out.shape[cdim])
        _grouped(st, x_atoms, out_atoms, groups)
    _bias(st, bias, out_atoms)
    st.set(out, Label(tuple(out.shape), [Block((cdim,), out_atoms)]))


def _norm_params(st: Any, x: Any, cdim: int, tensors: list[Any]) -> np.ndarray:
    xl = st.label(x)
    atoms = dim_atoms(st.uf, xl, cdim)
    for t in tensors:
        if t is not None and t.numel() == atoms.size:
            st.uf.union(dim_atoms(st.uf, st.claim(t), 0), atoms)
        elif t is not None:
            st.fix_tensors([t])
    return atoms


@rule("batch_norm", "instance_norm")
def batch_norm(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """BatchNorm/InstanceNorm: running stats, weight and bias follow the channel dim 1."""
    x = args[0]
    stats = [arg(args, kwargs, 1, "running_mean"), arg(args, kwargs, 2, "running_var"),
             arg(args, kwargs, 3, "weight"), arg(args, kwargs, 4, "bias")]
    _norm_params(st, x, 1 if x.ndim > 1 else 0, stats)
    st.set(out, st.label(x))


@rule("group_norm")
def group_norm(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """GroupNorm: with 1 < G < C a whole norm group is one unit (groups stay equal)."""
    x = args[0]
    groups = arg(args, kwargs, 1, "num_groups")
    atoms = _norm_params(st, x, 1, [arg(args, kwargs, 2, "weight"),
                                    arg(args, kwargs, 3, "bias")])
    if 1 < groups < atoms.size:
        rows = atoms.reshape(groups, -1)
        st.uf.union(rows, rows[:, :1])
    elif groups == 1:
        st.width_op("group_norm1", x, range(1, x.ndim))
    st.shape_attrs.setdefault(st.module(), {})["num_channels"] = [atoms]
    st.set(out, st.label(x))


@rule("layer_norm", "rms_norm")
def layer_norm(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """LayerNorm/RMSNorm over the last dims: weight/bias follow them. Without weights
    the normalized shape lives in the module (``normalized_shape``), updated by surgery."""
    x = args[0]
    shape = arg(args, kwargs, 1, "normalized_shape")
    k = len(shape) if isinstance(shape, (tuple, list)) else 1
    weight = arg(args, kwargs, 2, "weight")
    bias = arg(args, kwargs, 3, "bias") if op_name(func).endswith("layer_norm") else None
    xl = st.label(x)
    nd = x.ndim
    dims = [dim_atoms(st.uf, xl, nd - k + j) for j in range(k)]
    for t in (weight, bias):
        if t is not None:
            tl = st.label(t)
            for j in range(k):
                st.uf.union(dim_atoms(st.uf, tl, j), dims[j])
    st.shape_attrs.setdefault(st.module(), {})["normalized_shape"] = dims
    kind = "layer_norm" if op_name(func).endswith("layer_norm") else "rms_norm"
    st.width_op(kind, x, range(nd - k, nd), label=xl)
    st.set(out, xl)


@rule("torch.nn.functional.embedding", "torch.embedding")
def embedding(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Lookup table: the output's last dim carries the table's dim 1; rows are fixed."""
    if op_name(func) == "torch.embedding":
        w, idx = args[0], args[1]
    else:
        idx, w = args[0], arg(args, kwargs, 1, "weight")
    wl = st.label(w)
    st.uf.fix(dim_atoms(st.uf, wl, 0))
    il = singles(st.uf, st.label(idx))
    st.set(out, Label(tuple(out.shape), il.blocks + [Block((out.ndim - 1,),
                                                            dim_atoms(st.uf, wl, 1))]))


@rule("prelu")
def prelu(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """PReLU: a per-channel slope follows channel dim 1."""
    x, w = args[0], args[1]
    if w.numel() > 1:
        _norm_params(st, x, 1 if x.ndim > 1 else 0, [w])
    st.set(out, st.label(x))

