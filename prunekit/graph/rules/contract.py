"""Contractions and reductions: matmul family, einsum, sum/mean/max ...

A contracted dim couples its two sides index by index. A grid (e.g. heads x head_dim)
that is contracted along one of its axes collapses onto the others: whole heads.
"""

from __future__ import annotations

from typing import Any

import torch

from prunekit.graph.labels import Block, Label, collapse, dim_atoms, singles
from prunekit.graph.rules.common import arg, broadcast_union
from prunekit.graph.rules.elementwise import nary
from prunekit.graph.rules.registry import op_name, rule, short_name


def _collapse_grids(st: Any, lab: Label, dim: int) -> Label:
    blocks = []
    for b in lab.blocks:
        b2 = collapse(st.uf, b, {dim}) if len(b.dims) > 1 and dim in b.dims else b
        if b2 is not None:
            blocks.append(b2)
    return singles(st.uf, Label(lab.shape, blocks))


def _as_matrix(lab: Label, first: bool) -> Label:
    """A 1-D matmul operand as (1, n) (first) or (n, 1) (second)."""
    if len(lab.shape) != 1:
        return lab
    if first:
        return Label((1, lab.shape[0]), [Block((1,), b.atoms) for b in lab.blocks])
    return Label((lab.shape[0], 1), [Block((0,), b.atoms) for b in lab.blocks])


def matmul_label(st: Any, a: Label, b: Label) -> Label:
    """Label of ``a @ b`` (numpy broadcasting semantics), coupling contracted dims."""
    a1, b1 = len(a.shape) == 1, len(b.shape) == 1
    a, b = _as_matrix(a, True), _as_matrix(b, False)
    na, nb = len(a.shape), len(b.shape)
    a = _collapse_grids(st, a, na - 1)
    b = _collapse_grids(st, b, nb - 2)
    st.uf.union(dim_atoms(st.uf, a, na - 1), dim_atoms(st.uf, b, nb - 2))
    batch_a = Label(a.shape[:-2], [x for x in a.blocks if x.dims[0] < na - 2])
    batch_b = Label(b.shape[:-2], [x for x in b.blocks if x.dims[0] < nb - 2])
    nbatch = max(na, nb) - 2
    shape = tuple(max(p, q) for p, q in zip((1,) * (nbatch - na + 2) + a.shape[:-2],
                                            (1,) * (nbatch - nb + 2) + b.shape[:-2]))
    blocks = list(broadcast_union(st, [batch_a, batch_b], shape).blocks)
    rows = a.block_of(na - 2)
    cols = b.block_of(nb - 1)
    if rows is not None and not a1:
        blocks.append(Block((nbatch,), rows.atoms))
    if cols is not None and not b1:
        blocks.append(Block((nbatch + (0 if a1 else 1),), cols.atoms))
    out_shape = shape + (() if a1 else (a.shape[-2],)) + (() if b1 else (b.shape[-1],))
    return Label(out_shape, blocks)


@rule("matmul", "mm", "bmm", "__matmul__")
def matmul(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    a, b = args[0], args[1]
    if op_name(func).endswith("__rmatmul__"):
        a, b = b, a
    st.set(out, matmul_label(st, st.label(a), st.label(b)))


@rule("addmm", "baddbmm")
def addmm(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """``input + m1 @ m2`` (HF GPT-2's Conv1D)."""
    bias, m1, m2 = args[0], args[1], args[2]
    prod = matmul_label(st, st.label(m1), st.label(m2))
    st.set(out, broadcast_union(st, [prod, st.label(bias)], tuple(out.shape)))


def _einsum_terms(eq: str, ops: list[torch.Tensor]) -> tuple[list[str], str]:
    eq = eq.replace(" ", "")
    lhs, rhs = eq.split("->") if "->" in eq else (eq, None)
    terms = lhs.split(",")
    spare = [chr(c) for c in range(ord("A"), ord("Z") + 1) if chr(c) not in eq]
    ell = max((t.ndim - len(term.replace("...", "")) for term, t in zip(terms, ops)
               if "..." in term), default=0)
    fill = "".join(spare[:ell])
    terms = [term.replace("...", fill[len(fill) - (t.ndim - len(term) + 3):])
             if "..." in term else term for term, t in zip(terms, ops)]
    if rhs is None:
        letters = "".join(terms)
        rhs = fill + "".join(sorted(c for c in set(letters) if letters.count(c) == 1
                                    and c not in fill))
    return terms, rhs.replace("...", fill)


@rule("einsum")
def einsum(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Every occurrence of an einsum letter is coupled index by index."""
    eq = args[0]
    ops = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) \
        else list(args[1:])
    terms, rhs = _einsum_terms(eq, ops)
    labs = [singles(st.uf, st.label(t)) for t in ops]
    by_letter: dict[str, Any] = {}
    for term, t, lab in zip(terms, ops, labs):
        for d, c in enumerate(term):
            if t.shape[d] == 1:
                continue
            atoms = dim_atoms(st.uf, lab, d)
            if c in by_letter:
                st.uf.union(by_letter[c], atoms)
            else:
                by_letter[c] = atoms
    blocks = [Block((d,), by_letter[c]) for d, c in enumerate(rhs)
              if c in by_letter and out.shape[d] > 1]
    st.set(out, Label(tuple(out.shape), blocks))


REDUCE = ("sum", "mean", "amax", "amin", "max", "min", "std", "var", "norm", "logsumexp",
          "prod", "all", "any", "argmax", "argmin", "median", "nansum", "nanmean",
          "count_nonzero", "std_mean", "var_mean", "aminmax", "nanmedian", "mode", "topk",
          "kthvalue")


# Reductions that zero channels do not change (a zero adds nothing to a sum or a norm);
# every other reduction counts its channels and is recorded for the value check.
ZERO_INVARIANT = frozenset({"sum", "nansum", "norm", "any", "count_nonzero"})


def _reduced_dims(name: str, x: torch.Tensor, args: tuple, kwargs: dict) -> set[int]:
    pos = 2 if name == "norm" else 1
    dim = arg(args, kwargs, pos, "dim")
    if name in ("topk", "kthvalue"):
        dim = arg(args, kwargs, 2, "dim", -1)
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return set(range(x.ndim))
    dims = dim if isinstance(dim, (tuple, list)) else [dim]
    return {d % max(x.ndim, 1) for d in dims}


@rule(*REDUCE)
def reduce(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Reducing over a channel dim is allowed (the sum just has fewer terms); the other
    dims keep their atoms. ``max(a, b)`` with two tensors is elementwise."""
    name = short_name(op_name(func))
    x = args[0]
    if len(args) > 1 and isinstance(args[1], torch.Tensor):
        nary(st, func, args, kwargs, out)
        return
    dims = _reduced_dims(name, x, args, kwargs)
    lab = st.label(x)
    if name not in ZERO_INVARIANT:
        st.width_op("reduce", x, dims)
    blocks = []
    for b in lab.blocks:
        if set(b.dims) <= dims:
            if name in ("topk", "kthvalue"):
                st.uf.fix(b.atoms)
            continue
        b2 = collapse(st.uf, b, dims & set(b.dims))
        if b2 is not None:
            blocks.append(b2)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        if not isinstance(o, torch.Tensor):
            continue
        if o.ndim == x.ndim:
            st.set(o, Label(tuple(o.shape), [Block(b.dims, b.atoms) for b in blocks]))
        else:
            moved = [Block(tuple(d - sum(r < d for r in dims) for d in b.dims), b.atoms)
                     for b in blocks]
            st.set(o, Label(tuple(o.shape), moved))
