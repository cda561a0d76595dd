"""Prune an LSTM sequence classifier: hidden units out of every gate, layer and direction.

scikit-learn's 8×8 digits are read row by row, as a sequence of 8 steps of 8 pixels (the
way a text model reads token embeddings; swap the row encoder for an ``nn.Embedding`` and
nothing else changes). A row encoder (Linear + ReLU) feeds a 2-layer bidirectional LSTM
whose final hidden states ``h_n`` go to a linear head. After a short training run,
``prunekit.prune`` removes half of the hidden units — unit ``j`` is the gate rows
``j, H+j, 2H+j, 3H+j`` of every weight, its recurrent column, the next layer's input
columns ``j`` and ``H+j`` (both directions) and the head's columns — and half of the row
encoder's width (the LSTM's input features). The pruned model is fine-tuned, measured,
saved and loaded back (``prunekit.save`` / ``prunekit.load``: JSON plan + safetensors).

Run: ``python examples/lstm_text.py`` (a few seconds on two CPU cores; no network).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import prunekit  # noqa: E402
from prunekit.data import load_digits_tensors  # noqa: E402
from prunekit.measure import count_macs, count_params, latency  # noqa: E402


@dataclass
class Config:
    """Knobs of :func:`run` (the command line exposes each as ``--name``)."""

    hidden: int = 32
    width: int = 16
    layers: int = 2
    epochs: int = 10
    finetune_epochs: int = 10
    ratio: float = 0.5
    lr: float = 2e-2
    batch_size: int = 128
    repeats: int = 20
    threads: int = 1
    train_threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden", "width", "layers", "epochs", "batch_size", "repeats",
                     "threads", "train_threads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {getattr(self, name)!r}")
        if not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0:
            raise ValueError(f"finetune_epochs must be an int >= 0, got "
                             f"{self.finetune_epochs!r}")
        if not 0.0 <= self.ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {self.ratio!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")


class RowLSTM(nn.Module):
    """Row encoder -> bidirectional LSTM -> head on the last layer's ``h_n`` (both
    directions)."""

    def __init__(self, width: int = 16, hidden: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Linear(8, width), nn.ReLU())
        self.lstm = nn.LSTM(width, hidden, num_layers=layers, batch_first=True,
                            bidirectional=True)
        self.head = nn.Linear(2 * hidden, 10)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.encode(rows))
        return self.head(torch.cat([h[-2], h[-1]], dim=1))


def digit_sequences(seed: int) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)``; images ``(N, 8, 8)``: 8 steps of 8 pixels."""
    x_tr, y_tr, x_te, y_te = load_digits_tensors(seed=seed)
    return x_tr.squeeze(1), y_tr, x_te.squeeze(1), y_te


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float,
          batch_size: int, seed: int, threads: int = 1) -> None:
    """Adam with a cosine schedule; cross-entropy. Small recurrent steps are dominated by
    per-op overhead: one thread is as fast as two and does not spin on a busy machine."""
    if epochs == 0:
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _epochs(model, x, y, epochs, lr, batch_size, seed)
    finally:
        torch.set_num_threads(before)
        model.eval()


def _epochs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float,
            batch_size: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def measure(model: nn.Module, x: torch.Tensor, example: torch.Tensor, y: torch.Tensor,
            cfg: Config, timed: bool = True) -> dict[str, float | None]:
    """Params, MACs per sequence, accuracy and (``timed``) the measured median latency of
    a batch of 64 sequences on the CPU."""
    ms = latency(model, x[:64], threads=cfg.threads, warmup=3, repeats=cfg.repeats) \
        if timed else None
    return {"params": count_params(model), "macs": count_macs(model, example),
            "accuracy": accuracy(model, x, y), "latency_ms": ms.median_ms if ms else None}


def run(cfg: Config, verbose: bool = True) -> dict[str, object]:
    """Train, prune, fine-tune, measure, save and reload; the numbers as a dict."""
    torch.manual_seed(cfg.seed)
    x_tr, y_tr, x_te, y_te = digit_sequences(cfg.seed)

    def factory() -> RowLSTM:
        return RowLSTM(cfg.width, cfg.hidden, cfg.layers)

    model = factory()
    train(model, x_tr, y_tr, cfg.epochs, cfg.lr, cfg.batch_size, cfg.seed, cfg.train_threads)
    example = x_te[:1]
    dense = measure(model, x_te, example, y_te, cfg)
    res = prunekit.prune(model, example, ratio=cfg.ratio)
    pruned = measure(model, x_te, example, y_te, cfg, timed=False)  # same shapes as tuned
    train(model, x_tr, y_tr, cfg.finetune_epochs, cfg.lr, cfg.batch_size, cfg.seed + 1,
          cfg.train_threads)
    tuned = measure(model, x_te, example, y_te, cfg)
    with tempfile.TemporaryDirectory() as tmp:
        path = prunekit.save(model, Path(tmp) / "lstm", plan=res.plan)
        loaded = prunekit.load(path, factory)
        same = torch.equal(loaded.eval()(x_te), model(x_te))
    out = {"config": asdict(cfg), "dense": dense, "pruned": pruned, "finetuned": tuned,
           "hidden_size": model.lstm.hidden_size, "input_size": model.lstm.input_size,
           "skipped": res.skipped, "reload_identical": same}
    if verbose:
        report(out)
    return out


def report(out: dict[str, object]) -> None:
    d, p, t = out["dense"], out["pruned"], out["finetuned"]
    cfg = out["config"]
    print(f"LSTM {cfg['layers']} layers x 2 directions on digits rows (8 steps x 8 pixels)")
    print(f"{'':14}{'params':>9}{'MACs/seq':>10}{'accuracy':>10}{'latency':>10}")
    for name, row in (("dense", d), ("pruned", p), ("fine-tuned", t)):
        ms = "-" if row["latency_ms"] is None else f"{row['latency_ms']:.2f}ms"
        print(f"{name:14}{row['params']:>9,}{row['macs']:>10,}{row['accuracy']:>10.3f}{ms:>10}")
    print(f"hidden_size {cfg['hidden']} -> {out['hidden_size']}, input_size {cfg['width']} "
          f"-> {out['input_size']}; params x{d['params'] / t['params']:.2f} fewer, MACs "
          f"x{d['macs'] / t['macs']:.2f} fewer (theory), latency x"
          f"{d['latency_ms'] / t['latency_ms']:.2f} (measured, batch 64, "
          f"{cfg['threads']} CPU thread(s))")
    print(f"skipped: {out['skipped'] or 'nothing'}; save/load round trip identical: "
          f"{out['reload_identical']}")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(Config()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    cfg = Config(**vars(parser.parse_args(argv)))
    return run(cfg)


if __name__ == "__main__":
    main()
