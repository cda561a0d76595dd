"""Recurrent layers: ``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` / ``torch.rnn_relu``
(what ``nn.LSTM``, ``nn.GRU`` and ``nn.RNN`` call, with their flat weight list), the
single-step cells, and sequence packing.

A *hidden unit* ``j`` is the gate rows ``g·H + j`` (every gate ``g``) of ``weight_ih``,
``weight_hh``, ``bias_ih`` and ``bias_hh``, the recurrent column ``j`` of ``weight_hh``, the
next layer's input columns ``d·H + j`` (one per direction) and index ``j`` of the states.
``nn.LSTM`` and friends have one ``hidden_size`` for every layer and direction (their
states are one ``(layers·directions, batch, H)`` tensor), so channel ``j`` of the group is
unit ``j`` in *all* layers and directions at once. With ``proj_size`` (LSTM) there are two
groups: the cell units (``H``: gate rows, ``weight_hr`` columns, the cell state) and the
projected units (``P``: ``weight_hr`` rows, ``weight_hh`` columns, the hidden state, the
output and the next layer's input columns).

Time and batch positions mix in the recurrence (time) or carry no channel (batch): they
are fixed. Initial states: see :func:`_state`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from prunekit.graph.labels import Block, Label, dim_atoms, fix_dims
from prunekit.graph.rules.registry import op_name, rule, short_name
from prunekit.graph.rules.shape import fix_reporting

GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}
CELL_GATES = {"lstm_cell": 4, "gru_cell": 3, "rnn_tanh_cell": 1, "rnn_relu_cell": 1}


@dataclass
class _Call:
    """The arguments of one ``torch.lstm``-style call, unpacked."""

    x: torch.Tensor
    hx: list[torch.Tensor]
    params: list[torch.Tensor]
    has_biases: bool
    num_layers: int
    directions: int


def _parse(args: tuple) -> _Call:
    """Both overloads: ``(input, hx, params, has_biases, num_layers, dropout, train,
    bidirectional, batch_first)`` and the packed ``(data, batch_sizes, hx, params,
    has_biases, num_layers, dropout, train, bidirectional)``."""
    packed = len(args) > 3 and isinstance(args[3], (list, tuple))
    if packed:
        x, _sizes, hx, params, bias, layers, _p, _train, bidir = args[:9]
    else:
        x, hx, params, bias, layers, _p, _train, bidir = args[:8]
    hx = list(hx) if isinstance(hx, (list, tuple)) else [hx]
    return _Call(x, hx, list(params), bool(bias), int(layers), 2 if bidir else 1)


def _fix_units(st: Any, atoms: np.ndarray, op: str, reason: str) -> None:
    """Fix ``atoms``, recording ``reason`` when some of them were prunable."""
    if np.any(st.uf.find(atoms) != 0):
        st.skip(op, reason)
    st.uf.fix(atoms)


def _gate_rows(st: Any, tensors: list[Any], gates: int, cell: np.ndarray | None) -> np.ndarray:
    """Couple row ``g·H + j`` of every tensor (all gates ``g``); the H unit atoms."""
    for t in tensors:
        if t is None:
            continue
        rows = dim_atoms(st.uf, st.label(t), 0).reshape(gates, -1)
        if cell is None:
            cell = rows[0]
        st.uf.union(rows, cell[None, :])
    return cell


def _layer(st: Any, chunk: list[torch.Tensor], gates: int, has_biases: bool,
           cell: np.ndarray | None, hidden: np.ndarray | None
           ) -> tuple[np.ndarray, np.ndarray]:
    """One layer and direction: ``(cell atoms, hidden atoms)``, coupled with the given ones
    (every layer and direction shares ``hidden_size`` and ``proj_size``)."""
    w_ih, w_hh = chunk[0], chunk[1]
    biases = chunk[2:4] if has_biases else []
    cell = _gate_rows(st, [w_ih, w_hh, *biases], gates, cell)
    proj = len(chunk) == 2 + 2 * has_biases + 1
    if proj:
        hr = st.label(chunk[-1])
        st.uf.union(dim_atoms(st.uf, hr, 1), cell)
        rows = dim_atoms(st.uf, hr, 0)
        if hidden is None:
            hidden = rows
        st.uf.union(rows, hidden)
    elif hidden is None:
        hidden = cell
    else:
        st.uf.union(cell, hidden)
    st.uf.union(dim_atoms(st.uf, st.label(w_hh), 1), hidden)  # the recurrence
    return cell, hidden


def _input(st: Any, x: torch.Tensor, op: str) -> np.ndarray:
    """Feature atoms of the sequence (last dim); time and batch dims are fixed."""
    lab = fix_reporting(st, st.label(x), set(range(x.ndim - 1)), op,
                        "time steps mix in the recurrence: the time dim is kept")
    return dim_atoms(st.uf, lab, -1)


def _state(st: Any, t: torch.Tensor | None, atoms: np.ndarray, op: str) -> None:
    """Initial state ``(layers·directions, batch, n)``: index ``j`` of its last dim is unit
    ``j`` (a parameter or registered buffer is cut with the units).

    An untracked state that is the same for every unit (the zeros ``nn.LSTM`` makes when
    ``hx`` is not given, a ``torch.full`` of the hidden size) is made again at the new
    size with the same values; one that differs between units would not follow the
    units, so those stay whole (reported). A state given as a model input cannot shrink:
    the forward check after the cut fails and ``prune`` leaves the units whole.
    """
    if t is None:
        return
    lab = st.claim(t)
    if lab.is_fixed():
        if torch.equal(t, t[..., :1].expand_as(t)):
            return
        _fix_units(st, atoms, op, "initial state differs between hidden units and is not "
                                  "tracked (a constant, a model input or a buffer reshaped "
                                  "before use): units kept; make it an nn.Parameter to "
                                  "prune them")
        return
    lab = fix_dims(st.uf, lab, set(range(t.ndim - 1)))
    st.uf.union(dim_atoms(st.uf, lab, -1), atoms)


@rule("lstm", "gru", "rnn_tanh", "rnn_relu")
def recurrent(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """A whole ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (stacked, bidirectional, packed or not)."""
    name = short_name(op_name(func))
    gates, call = GATES[name], _parse(args)
    per = len(call.params) // (call.num_layers * call.directions)
    if per * call.num_layers * call.directions != len(call.params) or \
            per not in (2 + 2 * call.has_biases, 3 + 2 * call.has_biases):
        raise ValueError(f"unexpected flat weight list of length {len(call.params)}")
    cell = hidden = None
    feed = _input(st, call.x, name)
    for layer in range(call.num_layers):
        outs = []
        for d in range(call.directions):
            k = (layer * call.directions + d) * per
            chunk = call.params[k:k + per]
            cell, hidden = _layer(st, chunk, gates, call.has_biases, cell, hidden)
            st.uf.union(dim_atoms(st.uf, st.label(chunk[0]), 1), feed)
            outs.append(hidden)
        feed = np.concatenate(outs)
    _state(st, call.hx[0], hidden, name)
    if len(call.hx) > 1:
        _state(st, call.hx[1], cell, name)
    y, *states = out
    st.set(y, Label(tuple(y.shape), [Block((y.ndim - 1,), feed)]))
    for t, atoms in zip(states, (hidden, cell)):
        st.set(t, Label(tuple(t.shape), [Block((t.ndim - 1,), atoms)]))


@rule("lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell")
def recurrent_cell(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """One step of ``nn.LSTMCell``/``nn.GRUCell``/``nn.RNNCell``: ``(input, hx, w_ih, w_hh,
    b_ih, b_hh)``; the state that comes in is the state that goes out (same units)."""
    name = short_name(op_name(func))
    x, hx, w_ih, w_hh = args[:4]
    biases = [args[i] if len(args) > i else None for i in (4, 5)]
    cell = _gate_rows(st, [w_ih, w_hh, *biases], CELL_GATES[name], None)
    st.uf.union(dim_atoms(st.uf, st.label(w_hh), 1), cell)
    st.uf.union(dim_atoms(st.uf, st.label(w_ih), 1), _input(st, x, name))
    for t in (hx if isinstance(hx, (list, tuple)) else [hx]):
        _state(st, t, cell, name)
    for t in (out if isinstance(out, (list, tuple)) else [out]):
        st.set(t, Label(tuple(t.shape), [Block((t.ndim - 1,), cell)]))


@rule("_pack_padded_sequence")
def pack(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """``(T, B, *F)`` or ``(B, T, *F)`` -> packed ``(N, *F)``: features keep their atoms,
    time and batch positions are merged into ``N`` (fixed)."""
    x = args[0]
    lab = fix_reporting(st, st.label(x), {0, 1}, "_pack_padded_sequence",
                        "time and batch positions are packed together")
    data = out[0]
    st.set(data, Label(tuple(data.shape),
                       [Block(tuple(d - 1 for d in b.dims), b.atoms) for b in lab.blocks]))


@rule("_pad_packed_sequence")
def unpack(st: Any, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
    """Packed ``(N, *F)`` -> padded ``(T, B, *F)``/``(B, T, *F)``: features keep their
    atoms (the padding value fills every feature alike)."""
    lab = fix_reporting(st, st.label(args[0]), {0}, "_pad_packed_sequence",
                        "packed positions are not channels")
    padded = out[0]
    st.set(padded, Label(tuple(padded.shape),
                         [Block(tuple(d + 1 for d in b.dims), b.atoms) for b in lab.blocks]))
