"""Elementwise ops: unary ops keep the label; n-ary ops couple broadcast operands."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from prunekit.graph.labels import all_atoms, fresh
from prunekit.graph.rules.common import arg, broadcast_union
from prunekit.graph.rules.registry import op_name, rule, short_name

UNARY = (
    "relu", "relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid",
    "hardtanh", "leaky_relu", "elu", "selu", "celu", "mish", "softplus", "softsign",
    "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "threshold", "rrelu",
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "abs", "neg",
    "__neg__", "__abs__", "__invert__", "sin", "cos", "erf", "erfc", "erfinv",
    "square", "reciprocal", "sign", "floor", "ceil", "round", "trunc", "frac", "sgn",
    "nan_to_num", "logit", "sinc", "positive", "isnan", "isinf", "isfinite", "logical_not",
    "bitwise_not", "deg2rad", "rad2deg", "atan", "asin", "acos", "sinh", "cosh", "asinh",
    "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    "feature_dropout", "clamp", "clip", "clamp_min", "clamp_max", "contiguous", "clone",
    "detach", "float", "half", "double", "bfloat16", "int", "long", "bool", "to", "type",
    "type_as", "cpu", "cuda", "requires_grad", "softmax", "log_softmax", "softmin",
    "normalize", "cumsum", "cumprod", "logcumsumexp", "zeros_like", "ones_like",
    "empty_like", "full_like", "rand_like", "randn_like", "fill", "zero", "pin_memory",
    "_softmax", "_log_softmax", "gumbel_softmax", "tril", "triu", "sort", "argsort",
    "cummax", "cummin", "retain_grad", "coalesce",
    "__pos__", "exponential", "uniform", "normal", "bernoulli", "random",
)

NARY = (
    "add", "sub", "mul", "div", "true_divide", "floor_divide", "remainder", "fmod",
    "maximum", "minimum", "fmax", "fmin", "pow", "__add__", "__sub__", "__mul__",
    "__truediv__", "__floordiv__", "__mod__", "__pow__", "__and__", "__or__", "__xor__",
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "eq", "ne", "lt", "le",
    "gt", "ge", "logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or",
    "bitwise_xor", "where", "addcmul", "addcdiv", "lerp", "hypot", "atan2", "arctan2",
    "xlogy", "copysign", "rsub", "multiply", "divide", "subtract", "copy", "masked_scatter",
    "heaviside", "nextafter", "ldexp", "float_power", "logaddexp", "logaddexp2", "isclose",
    "__lshift__", "__rshift__", "masked_fill",
)


# Ops along one dim whose values depend on how many entries that dim has (exp(0) = 1
# still counts in a softmax; a zero ends a cumulative product): recorded for the value check.
ALONG_DIM = frozenset({"softmax", "log_softmax", "softmin", "_softmax", "_log_softmax",
                       "gumbel_softmax", "cumprod", "logcumsumexp", "cummax", "cummin"})


def _along(st: Any, func: Any, x: Any, args: tuple, kwargs: dict) -> None:
    name = short_name(op_name(func))
    if name not in ALONG_DIM or not isinstance(x, torch.Tensor):
        return
    dim = arg(args, kwargs, 1, "dim")
    if dim is None:  # torch's implicit softmax dim
        dim = 0 if x.ndim in (0, 1, 3) else 1
    st.width_op("pointwise", x, (dim,))


@rule(*UNARY)
def unary(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Value-wise op (or one that keeps shape and channel layout): same label."""
    x = args[0] if args else next(iter(kwargs.values()))
    lab = st.label(x)
    _along(st, func, x, args, kwargs)
    if isinstance(out, torch.Tensor):
        if tuple(out.shape) == lab.shape:
            st.set(out, lab)
        else:
            st.barrier(str(func), args, kwargs, "shape changed in a value-wise op")
    elif isinstance(out, (tuple, list)):  # sort/cummax: (values, indices)
        for t in out:
            if isinstance(t, torch.Tensor) and tuple(t.shape) == lab.shape:
                st.set(t, lab)


@rule(*NARY)
def nary(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Broadcasting elementwise op over every tensor operand (in place too)."""
    ops = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    if not isinstance(out, torch.Tensor):
        return
    labels = [st.label(t) for t in ops]
    buffers = [st.buffer_names[id(t)] for t in ops
               if id(t) in st.buffer_names and id(t) not in st.labels and t.numel() > 1]
    plain = any(not lab.blocks and t.numel() > 1 for t, lab in zip(ops, labels, strict=True))
    live = _live(st, labels) if buffers or plain else 0
    st.set(out, broadcast_union(st, labels, tuple(out.shape)))
    if (buffers or plain) and _live(st, labels) < live:  # not cut with channels: say so
        st.skip(getattr(func, "__name__", str(func)), (
            f"registered buffer {', '.join(buffers)} is not cut with channels: the "
            "channels it meets are kept (make it an nn.Parameter to prune them)")
            if buffers else "a tensor computed in forward that is not cut with channels "
            "(e.g. ALiBi slopes, a position table) meets them: they are kept")


def _live(st: Any, labels: list) -> int:
    """How many of the labels' atoms are still prunable (not merged with the fixed root)."""
    total = 0
    for lab in labels:
        atoms = all_atoms(lab)
        if atoms.size:
            total += int(np.count_nonzero(st.uf.find(atoms)))
    return total


FACTORIES = (
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "zeros", "ones", "empty",
    "full", "arange", "linspace", "logspace", "eye", "rand", "randn", "randint", "randperm",
    "tensor", "as_tensor", "from_numpy", "tril_indices", "triu_indices", "empty_strided",
    "scalar_tensor", "get_device", "is_floating_point", "is_complex", "numel", "dim", "size",
    "stride", "data_ptr", "element_size", "nelement", "item", "tolist", "__len__",
    "__bool__", "__int__", "__float__", "__index__", "__format__", "__repr__", "shape",
    "dtype", "device", "is_cuda", "ndim", "grad", "is_leaf",
)


UNIFORM = frozenset({"zeros", "ones", "full", "new_zeros", "new_ones", "new_full"})


@rule(*FACTORIES)
def factory(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """New constants and metadata queries: no coupling. A constant that later meets
    channels fixes them there -- except a *uniform* one (zeros, ones, full): every index
    holds the same value, so it gets fresh atoms and is cut with what it meets. Its size
    comes from the call at run time (T5's zero position bias over ``n_heads``); a size
    written as a literal fails the forward check after the cut, and prune() keeps that
    group whole and names it."""
    if short_name(op_name(func)) in UNIFORM and isinstance(out, torch.Tensor) \
            and out.ndim > 0:
        st.set(out, fresh(st.uf, tuple(out.shape)))
