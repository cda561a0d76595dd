"""Distillation losses for sentence encoders that keep what retrieval needs.

Retrieval ranks candidates by the cosine between embeddings, so a pruned encoder serves
retrieval as well as the dense one when it reproduces the dense model's *similarities*,
not necessarily each embedding: the relational loss compares the two models' cosine
similarity matrices over a batch (relational knowledge distillation, Park et al., 2019,
in its angle-free "similarity-preserving" form, Tung & Mori, 2019).
"""

from __future__ import annotations

import torch
from torch import nn


def similarity_matrix(emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarities of all pairs of rows: ``S_ij = cos(e_i, e_j)`` for ``emb`` (N, D)."""
    if emb.dim() != 2:
        raise ValueError(f"emb must be (N, D), got shape {tuple(emb.shape)}")
    unit = nn.functional.normalize(emb, dim=-1)
    return unit @ unit.T


def relational_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the student's and teacher's cosine-similarity matrices.

    ``L = (1/N²) Σ_ij (cos(s_i, s_j) − cos(t_i, t_j))²`` for embeddings ``student`` (N, D_s)
    and ``teacher`` (N, D_t) of the same N texts (the widths may differ: only the N×N
    similarities are compared). ``L = 0`` exactly when every pairwise cosine agrees, e.g.
    when ``student`` is ``teacher`` rotated and rescaled per row; the diagonal is 1 on both
    sides and contributes nothing. Gradients flow into ``student`` only (``teacher`` is
    detached).
    """
    if student.dim() != 2 or teacher.dim() != 2:
        raise ValueError(f"student and teacher must be (N, D), got {tuple(student.shape)} "
                         f"and {tuple(teacher.shape)}")
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(f"student has {student.shape[0]} rows, teacher {teacher.shape[0]}")
    if student.shape[0] < 2:
        raise ValueError("relational_loss needs at least 2 embeddings (pairs)")
    diff = similarity_matrix(student) - similarity_matrix(teacher.detach()).to(student.dtype)
    return diff.pow(2).mean()
