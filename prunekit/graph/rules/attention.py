"""Attention: fused scaled-dot-product attention and ``nn.MultiheadAttention``.

SDPA couples heads across q, k, v and the output; with grouped-query attention
(``enable_gqa``) one kv head and its ``Hq / Hkv`` query heads form one unit, so a cut
removes whole GQA groups. ``nn.MultiheadAttention`` ties the inner width to the model
width (``head_dim = E / num_heads``), so its unit is one head-dim column ``d`` of every
head together with the model channels ``{h·D + d}``: heads stay uniform and intact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from prunekit.graph.labels import Block, Label, dim_atoms, singles
from prunekit.graph.rules.common import arg, broadcast_union
from prunekit.graph.rules.contract import _collapse_grids
from prunekit.graph.rules.registry import rule


@rule("scaled_dot_product_attention")
def sdpa(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    q, k, v = args[0], args[1], args[2]
    mask = arg(args, kwargs, 3, "attn_mask")
    nd = q.ndim
    ql = _collapse_grids(st, st.label(q), nd - 1)
    kl = _collapse_grids(st, st.label(k), nd - 1)
    vl = singles(st.uf, st.label(v))
    st.uf.union(dim_atoms(st.uf, ql, -1), dim_atoms(st.uf, kl, -1))
    st.width_op("sdpa", q, (nd - 1,), label=ql)
    st.uf.union(dim_atoms(st.uf, kl, -2), dim_atoms(st.uf, vl, -2))
    blocks = []
    if nd >= 3:
        hq, hk = q.shape[-3], k.shape[-3]
        qh = dim_atoms(st.uf, ql, -3)
        kh, vh = dim_atoms(st.uf, kl, -3), dim_atoms(st.uf, vl, -3)
        st.uf.union(kh, vh)
        if hq != hk and hk > 0 and hq % hk == 0:
            st.uf.union(qh.reshape(hk, hq // hk), kh[:, None])
        elif hq == hk:
            st.uf.union(qh, kh)
        if hq > 1:
            blocks.append(Block((nd - 3,), qh))
        batch = [Label(q.shape[:-3], [b for b in lab.blocks if b.dims[0] < nd - 3])
                 for lab in (ql, kl, vl)]
        blocks += broadcast_union(st, batch, tuple(out.shape[:-3])).blocks
    lq = ql.block_of(nd - 2)
    if lq is not None:
        blocks.append(Block((nd - 2,), lq.atoms))
    dv = vl.block_of(nd - 1)
    if dv is not None:
        blocks.append(Block((nd - 1,), dv.atoms))
    if mask is not None:  # a full-size constant mask over heads keeps those heads
        scores = tuple(out.shape[:-1]) + (k.shape[-2],)
        broadcast_union(st, [Label(scores, [b for b in blocks if b.dims[0] < nd - 1]),
                             st.label(mask)], scores)
    st.set(out, Label(tuple(out.shape), blocks))


@rule("multi_head_attention_forward")
def mha(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """``F.multi_head_attention_forward`` with packed in-projection (self-attention)."""
    names = ["query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight",
             "in_proj_bias", "bias_k", "bias_v", "add_zero_attn", "dropout_p",
             "out_proj_weight", "out_proj_bias"]
    a = {n: arg(args, kwargs, i, n) for i, n in enumerate(names)}
    if kwargs.get("use_separate_proj_weight") or a["bias_k"] is not None \
            or a["in_proj_weight"] is None:
        st.barrier("multi_head_attention_forward", args, kwargs,
                   "separate projections / bias_k are not supported")
        return
    query, key, value = a["query"], a["key"], a["value"]
    heads = a["num_heads"]
    e = query.shape[-1]
    d = e // heads
    wl = st.label(a["in_proj_weight"])
    rows = dim_atoms(st.uf, wl, 0).reshape(3, heads, d)
    cols = dim_atoms(st.uf, wl, 1)
    for t in {id(query): query, id(key): key, id(value): value}.values():
        st.uf.union(dim_atoms(st.uf, st.label(t), -1), cols)
    if a["in_proj_bias"] is not None:
        st.uf.union(dim_atoms(st.uf, st.label(a["in_proj_bias"]), 0), rows.ravel())
    ow = st.label(a["out_proj_weight"])
    out_cols = dim_atoms(st.uf, ow, 1).reshape(heads, d)
    # unit d: column d of every head (q, k, v rows), out_proj columns and model channels
    unit = np.concatenate([rows.transpose(2, 0, 1).reshape(d, -1), out_cols.T,
                           cols.reshape(heads, d).T], axis=1)
    st.uf.union(unit, unit[:, :1])
    st.width_op("mha", None, (0, 1), label=Label((heads, d), [Block((0, 1), rows[0])]))
    w0 = dim_atoms(st.uf, ow, 0)
    if a["out_proj_bias"] is not None:
        st.uf.union(dim_atoms(st.uf, st.label(a["out_proj_bias"]), 0), w0)
    ql = singles(st.uf, st.label(query))
    result = out[0] if isinstance(out, (tuple, list)) else out
    blocks = [b for b in ql.blocks if b.dims[0] != query.ndim - 1]
    blocks.append(Block((query.ndim - 1,), w0))
    st.set(result, Label(tuple(result.shape), blocks))
