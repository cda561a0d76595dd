"""Tiny models shared by the depth tests (random weights, built from configs)."""

from __future__ import annotations

import torch
from torch import nn


class Residual(nn.Module):
    """``y = x + W2 relu(W1 x)`` on (N, D)."""

    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(torch.relu(self.fc1(x)))


class ResMLP(nn.Module):
    """Stem, four residual blocks in a ModuleList, head."""

    def __init__(self, d: int = 8, n: int = 4) -> None:
        super().__init__()
        self.stem = nn.Linear(4, d)
        self.blocks = nn.ModuleList(Residual(d) for _ in range(n))
        self.head = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for b in self.blocks:
            h = b(h)
        return self.head(h)


def tiny_hf(kind: str) -> nn.Module:
    """A tiny BERT / GPT-2 / Llama (GQA: 4 query heads, 2 KV heads) with random weights."""
    import transformers as tf

    torch.manual_seed(0)
    common = dict(vocab_size=64, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if kind == "bert":
        cfg = tf.BertConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                            intermediate_size=64, max_position_embeddings=64, **common)
        return tf.BertModel(cfg).eval()
    if kind == "gpt2":
        cfg = tf.GPT2Config(n_embd=32, n_layer=4, n_head=4, n_positions=64, **common)
        return tf.GPT2LMHeadModel(cfg).eval()
    cfg = tf.LlamaConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=64, **common)
    return tf.LlamaForCausalLM(cfg).eval()


def make_ids() -> dict[str, torch.Tensor]:
    """A batch of 2 token sequences of length 7."""
    return {"input_ids": torch.randint(3, 64, (2, 7), generator=torch.Generator().manual_seed(0))}


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert list(after) == list(before)
    for k, v in before.items():
        assert torch.equal(after[k], v), k
