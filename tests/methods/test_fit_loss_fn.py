"""fit(..., loss_fn=...): dict inputs (tokenizer output), unlabeled distillation, resume."""

import copy

import pytest
import torch
from torch import nn

from prunekit.methods import FitConfig, fit

torch.set_num_threads(1)


class TinyEncoder(nn.Module):
    """Takes a tokenizer-style dict: ``input_ids`` and ``attention_mask``."""

    def __init__(self, vocab: int = 50, dim: int = 16) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.mix = nn.Linear(dim, dim)

    def forward(self, input_ids, attention_mask):
        h = torch.tanh(self.mix(self.emb(input_ids)))
        m = attention_mask.unsqueeze(-1).float()
        return (h * m).sum(1) / m.sum(1).clamp(min=1)


def _data(n=96, seq=7):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (n, seq), generator=g)
    mask = torch.ones(n, seq, dtype=torch.long)
    mask[:, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _distill(model, xb, yb, teacher):
    assert yb is None and set(xb) == {"input_ids", "attention_mask"}
    with torch.no_grad():
        target = teacher(**xb)
    return (model(**xb) - target).pow(2).sum(-1).mean()


def _gap(student, teacher, x):
    with torch.no_grad():
        return float((student(**x) - teacher(**x)).pow(2).sum(-1).mean())


def test_distillation_on_dict_inputs_reduces_the_gap():
    torch.manual_seed(0)
    teacher, student = TinyEncoder(), TinyEncoder()
    x = _data()
    before = _gap(student, teacher, x)
    res = fit(student, (x, None), FitConfig(epochs=4, batch_size=16, lr=1e-2, progress=False),
              teacher=teacher, loss_fn=_distill)
    assert res.steps == 4 * 6
    assert _gap(student, teacher, x) < 0.5 * before


def test_resume_with_dict_inputs_matches_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    teacher, start = TinyEncoder(), TinyEncoder()
    x = _data()
    full = copy.deepcopy(start)
    fit(full, (x, None), FitConfig(epochs=2, batch_size=16, lr=1e-2, progress=False),
        teacher=teacher, loss_fn=_distill)

    cut = copy.deepcopy(start)
    cfg = FitConfig(epochs=2, batch_size=16, lr=1e-2, progress=False,
                    checkpoint=tmp_path / "ck.pt", checkpoint_every=1)

    def stop(step, model):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(cut, (x, None), cfg, teacher=teacher, loss_fn=_distill, on_step=stop)
    resumed = copy.deepcopy(start)
    res = fit(resumed, (x, None), cfg, teacher=teacher, loss_fn=_distill)
    assert res.resumed_from == 6  # on_step interrupted step 7 before its checkpoint
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_bad_data_is_named():
    m = TinyEncoder()
    x = _data()
    with pytest.raises(ValueError, match="loss_fn"):
        fit(m, (x, None), FitConfig(epochs=1, progress=False))
    bad = {"input_ids": x["input_ids"], "attention_mask": x["attention_mask"][:5]}
    with pytest.raises(ValueError, match="one length"):
        fit(m, (bad, None), FitConfig(epochs=1, progress=False), loss_fn=_distill)
    with pytest.raises(TypeError, match="scalar"):
        fit(m, (x, None), FitConfig(epochs=1, progress=False),
            loss_fn=lambda model, xb, yb, t: model(**xb))
