"""WordNet definition -> noun retrieval: a real-text quality metric for sentence encoders.

Each of ``n`` WordNet nouns (distinct lemmas) and its definition are embedded; a
definition's query is correct when its own noun is the nearest of the ``n`` nouns by
cosine. Recall@1 = fraction correct (chance ``1/n``; the dense all-MiniLM-L6-v2 scores
about 0.26 for n = 2,000). A pruned model is also compared with the dense one by the
mean cosine between their embeddings of the same texts.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from prunekit.eval.embed import embed_texts


@dataclass(frozen=True)
class RetrievalSet:
    """Nouns and their definitions (aligned), plus unlabeled text for distillation."""

    nouns: list[str]
    definitions: list[str]
    extra_text: list[str]


@dataclass(frozen=True)
class RetrievalResult:
    """Recall@1 and, when a reference was given, the mean cosine to its embeddings."""

    recall_at_1: float
    n: int
    mean_cosine: float | None = None
    embeddings: torch.Tensor | None = None


def wordnet_retrieval_set(n: int = 2000, *, sample: str = "first", seed: int = 0,
                          root: str | os.PathLike | None = None,
                          n_extra: int = 4000, extra_lemmas: bool = False,
                          extra_pos: Sequence[str] = ("noun",)) -> RetrievalSet:
    """``n`` WordNet 3.0 nouns with distinct lemmas and their definitions, plus the
    definitions and examples of ``n_extra`` *other* synsets as unlabeled distillation text.

    ``sample="first"`` takes the first ``n`` distinct lemmas in file order (the standard
    set: dense all-MiniLM-L6-v2 Recall@1 = 0.231 at n = 2,000); ``"random"`` draws them
    with ``seed`` (an easier mix of concrete nouns: 0.40).

    More distillation text (the evaluation embeds single nouns as well as sentences):

    - ``extra_lemmas=True`` also adds each extra synset's first lemma as a short text;
    - ``extra_pos`` draws the ``n_extra`` synsets from these parts of speech together
      (``"noun"``, ``"verb"``, ``"adj"``, ``"adv"``: 82,115 / 13,767 / 18,156 / 3,621
      synsets), read from the ``data.<pos>`` files beside ``data.noun``.

    The evaluation never leaks into ``extra_text``: the ``n`` evaluation synsets are
    excluded, and so is any extra text equal (case-insensitively) to an evaluation noun
    or definition (another synset of the same word, a verb spelled like a noun).
    With the defaults the extra text is exactly what earlier versions returned.

    Raises ValueError if ``n`` < 2, exceeds the distinct lemmas, ``sample`` is unknown,
    ``n_extra`` < 0 or ``extra_pos`` names an unknown part of speech.
    """
    from prunekit.data import load_wordnet_glosses

    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    if n_extra < 0:
        raise ValueError(f"n_extra must be >= 0, got {n_extra}")
    bad = [p for p in extra_pos if p not in POS_FILES]
    if bad or not extra_pos:
        raise ValueError(f"extra_pos must be a non-empty subset of {tuple(POS_FILES)}, "
                         f"got {tuple(extra_pos)}")
    glosses = load_wordnet_glosses(root)
    first: dict[str, Any] = {}
    for g in glosses:
        first.setdefault(g.lemma.lower(), g)
    lemmas = list(first)  # file order
    if n > len(lemmas):
        raise ValueError(f"n={n} exceeds the {len(lemmas)} distinct WordNet noun lemmas")
    if sample not in ("first", "random"):
        raise ValueError(f"sample must be 'first' or 'random', got {sample!r}")
    rng = random.Random(seed)
    chosen = lemmas[:n] if sample == "first" else rng.sample(sorted(lemmas), n)
    picked = {first[k].offset for k in chosen}
    pool = [g for g in glosses if g.offset not in picked] if "noun" in extra_pos else []
    for pos in extra_pos:
        if pos != "noun":
            pool += _read_glosses(root, pos)
    rng.shuffle(pool)
    nouns = [first[k].lemma for k in chosen]
    definitions = [first[k].definition for k in chosen]
    extra = [t for g in pool[:n_extra] for t in (g.definition, *g.examples)]
    if extra_lemmas:
        extra += [g.lemma for g in pool[:n_extra]]
    if extra_lemmas or tuple(extra_pos) != ("noun",):
        held_out = {t.lower() for t in nouns + definitions}
        extra = [t for t in extra if t.lower() not in held_out]
    return RetrievalSet(nouns, definitions, extra)


POS_FILES = {"noun": "data.noun", "verb": "data.verb", "adj": "data.adj", "adv": "data.adv"}


def _read_glosses(root: str | os.PathLike | None, pos: str) -> list[Any]:
    """Glosses of one part of speech from ``data.<pos>`` beside ``data.noun`` (same line
    format; adjective markers such as ``(a)``/``(p)`` are dropped from the lemma)."""
    import dataclasses
    import re

    from prunekit.data.wordnet import parse_gloss_line, wordnet_dir

    path = wordnet_dir(root) / POS_FILES[pos]
    if not path.is_file():
        raise FileNotFoundError(f"extra_pos: {path} not found (WordNet {pos} glosses)")
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            g = parse_gloss_line(line.rstrip("\n"))
            if g is not None:
                out.append(dataclasses.replace(g, lemma=re.sub(r"\([a-z]+\)$", "", g.lemma)))
    return out


def recall_at_1(queries: torch.Tensor, keys: torch.Tensor) -> float:
    """Fraction of rows ``i`` whose most similar key (dot product) is key ``i``."""
    if queries.shape != keys.shape:
        raise ValueError(f"queries {tuple(queries.shape)} and keys {tuple(keys.shape)} differ")
    best = (queries @ keys.T).argmax(dim=1)
    return float((best == torch.arange(len(keys))).float().mean())


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over rows of ``cos(a_i, b_i)``."""
    if a.shape != b.shape:
        raise ValueError(f"embeddings {tuple(a.shape)} and {tuple(b.shape)} differ")
    return float(nn.functional.cosine_similarity(a.double(), b.double(), dim=-1).mean())


def wordnet_retrieval(model: nn.Module, tokenizer: Any, data: RetrievalSet, *,
                      reference: torch.Tensor | None = None, batch_size: int = 64,
                      max_length: int = 64) -> RetrievalResult:
    """Recall@1 of definition -> noun retrieval on ``data``.

    ``reference``: the dense model's ``embeddings`` from an earlier call (nouns then
    definitions, stacked); when given, ``mean_cosine`` to it is reported.
    """
    texts = data.nouns + data.definitions
    emb = embed_texts(model, tokenizer, texts, batch_size=batch_size, max_length=max_length)
    n = len(data.nouns)
    r1 = recall_at_1(emb[n:], emb[:n])
    cos = mean_cosine(emb, reference) if reference is not None else None
    return RetrievalResult(r1, n, cos, emb)
