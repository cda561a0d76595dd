"""Sentence embeddings from a transformer encoder: mean pooling, L2-normalized."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from prunekit.inputs import inference_mode_of


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors that the attention mask keeps.

    ``e = Σ_t m_t h_t / max(Σ_t m_t, ε)`` for ``hidden`` (N, T, D), ``mask`` (N, T).
    """
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int = 64) -> dict[str, Any]:
    """Pad/truncate ``texts`` to a batch of at most ``max_length`` tokens."""
    return dict(tokenizer(list(texts), padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt"))


def embed_texts(model: nn.Module, tokenizer: Any, texts: Sequence[str], *,
                batch_size: int = 64, max_length: int = 64) -> torch.Tensor:
    """Unit-norm mean-pooled embeddings of ``texts`` (N, D), in eval mode, no grad.

    Texts are batched in order of length (less padding, same result) and returned in
    their original order.

    ``model(**batch)`` must return the token states first (a Hugging Face encoder).
    """
    if not isinstance(texts, Sequence) or isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
    out = []
    with inference_mode_of(model):
        for i in range(0, len(texts), batch_size):
            batch = tokenize(tokenizer, [texts[j] for j in order[i:i + batch_size]], max_length)
            hidden = model(**batch)[0]
            out.append(mean_pool(hidden, batch["attention_mask"]))
    if not out:
        return torch.empty(0, 0)
    emb = torch.empty_like(torch.cat(out))
    emb[torch.tensor(order)] = torch.cat(out)
    return nn.functional.normalize(emb.float(), dim=-1)
