"""The one tracer: a forward pass seen op by op and module call by module call.

:func:`run` executes ``model(example_inputs)`` in eval mode under a
:class:`~torch.overrides.TorchFunctionMode` and module hooks, and tells *observers* about
every module call (``enter`` / ``exit``) and every torch call (``op``): functional ops,
tensor methods and layer functionals, each with its arguments, its output and the
innermost module running it. Everything that reads a forward pass is an observer of this
one run: the channel graph (:mod:`prunekit.graph.trace`), the stored :class:`OpLog` that
the structure finders query (residual blocks, branches, dense connections, SE gates),
the forward check after a cut. A ``dispatch`` function may compute an op instead of the
op itself (the value check computes width ops on kept channels that way).

Calls are counted the same way in every run (the mode is off inside an op, so an op's
own internals are not seen), which makes a call's index a stable name for it.

With ``grad=True`` the pass runs with autograd on, every parameter temporarily requiring
grad and floating inputs replaced by grad-requiring copies, so that every tensor carries
its autograd history (the residual-block and branch finders walk it). Drop a grad log
before cutting the model: a live autograd graph pins the parameters' old shapes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from prunekit.inputs import call_model, first_tensor, iter_tensors

__all__ = ["ModuleCall", "Observer", "OpLog", "OpRecord", "call_model", "first_tensor",
           "iter_tensors", "record", "run"]


@dataclass
class OpRecord:
    """One torch call: ``out = func(*args, **kwargs)`` inside module ``module``."""

    index: int
    func: Any
    args: tuple
    kwargs: dict
    out: Any
    module: str
    clock: int = 0  # position among all events of the pass (module calls' start/end too)


@dataclass
class ModuleCall:
    """One call of a module. ``arg0`` is the first positional argument as it was when the
    call started (a list is copied: torchvision's dense blocks append to it later)."""

    name: str
    args: tuple
    kwargs: dict
    arg0: Any = None
    output: Any = None
    start: int = 0
    end: int = 0
    failed: bool = False  # the call raised (its exit is seen while the error unwinds)


class Observer(Protocol):
    """What :func:`run` tells: module calls entered and left, torch calls made."""

    def enter(self, call: ModuleCall) -> None: ...

    def exit(self, call: ModuleCall) -> None: ...

    def op(self, rec: OpRecord) -> None: ...


Dispatch = Callable[[int, Any, tuple, dict], Any]


class _Mode(TorchFunctionMode):
    def __init__(self, observers: Sequence[Observer], stack: list[str],
                 dispatch: Dispatch | None, clock: list[int]) -> None:
        super().__init__()
        self.observers, self.stack, self.dispatch, self.calls = observers, stack, dispatch, 0
        self.clock = clock

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        index, self.calls = self.calls, self.calls + 1
        if self.dispatch is None:
            out = func(*args, **kwargs)
        else:
            out = self.dispatch(index, func, args, kwargs)
        if self.observers:
            self.clock[0] += 1
            rec = OpRecord(index, func, args, kwargs, out, self.stack[-1] if self.stack else "",
                           self.clock[0])
            for obs in self.observers:
                obs.op(rec)
        return out


def _hooks(model: nn.Module, observers: Sequence[Observer], stack: list[str],
           clock: list[int]) -> list[Any]:
    handles = []
    open_calls: dict[str, list[ModuleCall]] = {}
    for name, mod in model.named_modules():
        def pre(_m: nn.Module, args: tuple, kwargs: dict, name: str = name) -> None:
            clock[0] += 1
            first = args[0] if args else None
            call = ModuleCall(name, args, kwargs, list(first) if isinstance(first, list)
                              else first, start=clock[0])
            open_calls.setdefault(name, []).append(call)
            stack.append(name)
            for obs in observers:
                obs.enter(call)

        def post(_m: nn.Module, _a: tuple, _k: dict, out: Any, name: str = name) -> None:
            clock[0] += 1
            if stack and stack[-1] == name:
                stack.pop()
            pending = open_calls.get(name)
            if not pending:
                return
            call = pending.pop()
            call.output, call.end = out, clock[0]
            call.failed = out is None and sys.exc_info()[1] is not None
            for obs in observers:
                obs.exit(call)

        handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(mod.register_forward_hook(post, with_kwargs=True, always_call=True))
    return handles


def _grad_inputs(x: Any) -> Any:
    """Floating tensors of ``x`` as grad-requiring copies (same values)."""
    if isinstance(x, torch.Tensor):
        return x.detach().requires_grad_(True) if x.is_floating_point() else x
    if isinstance(x, (tuple, list)):
        return type(x)(_grad_inputs(v) for v in x)
    if isinstance(x, Mapping):
        return {k: _grad_inputs(v) for k, v in x.items()}
    return x


@contextlib.contextmanager
def _grad_mode(model: nn.Module, grad: bool) -> Iterator[None]:
    flags = [(p, p.requires_grad) for p in model.parameters()] if grad else []
    try:
        for p, _ in flags:
            p.requires_grad_(True)
        with torch.enable_grad() if grad else torch.no_grad():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def run(model: nn.Module, example_inputs: Any, observers: Sequence[Observer] = (),
        grad: bool = False, dispatch: Dispatch | None = None) -> Any:
    """Run ``model`` once in eval mode, telling ``observers`` every module and torch call;
    the output. Train/eval and ``requires_grad`` flags are restored afterwards."""
    stack: list[str] = []
    clock = [0]
    modes = {m: m.training for m in model.modules()}
    handles = _hooks(model, observers, stack, clock)
    try:
        model.eval()
        inputs = _grad_inputs(example_inputs) if grad else example_inputs
        with _grad_mode(model, grad), _Mode(observers, stack, dispatch, clock):
            return call_model(model, inputs)
    finally:
        for h in handles:
            h.remove()
        for m, flag in modes.items():
            m.training = flag


@dataclass
class OpLog:
    """A stored pass: every op and every module call, tensors kept alive (ids stay
    unique). Build with :func:`record`; the structure finders query it."""

    ops: list[OpRecord] = field(default_factory=list)
    calls: dict[str, list[ModuleCall]] = field(default_factory=dict)
    output: Any = None
    grad: bool = False
    _made_by: dict[int, OpRecord] | None = field(default=None, repr=False)

    # observer protocol
    def enter(self, call: ModuleCall) -> None:
        self.calls.setdefault(call.name, []).append(call)

    def exit(self, call: ModuleCall) -> None:
        pass

    def op(self, rec: OpRecord) -> None:
        # lists passed to an op are copied: the model may append to them later (a dense
        # block's feature list), and the log must say what the op saw
        if any(isinstance(a, list) for a in rec.args):
            rec.args = tuple(list(a) if isinstance(a, list) else a for a in rec.args)
        self.ops.append(rec)

    # queries
    def n_calls(self, module: str) -> int:
        """How often ``module`` was called."""
        return len(self.calls.get(module, ()))

    def first_call(self, module: str) -> ModuleCall | None:
        found = self.calls.get(module)
        return found[0] if found else None

    def outputs(self, module: str) -> list[torch.Tensor]:
        """The first tensor of each call's output."""
        out = (first_tensor(c.output) for c in self.calls.get(module, ()))
        return [t for t in out if t is not None]

    def made_by(self, t: Any) -> OpRecord | None:
        """The op whose output is (or contains) tensor ``t``."""
        if self._made_by is None:
            self._made_by = {}
            for rec in self.ops:
                for o in iter_tensors(rec.out):
                    self._made_by[id(o)] = rec
        return self._made_by.get(id(t)) if isinstance(t, torch.Tensor) else None

    def replay(self, *observers: Observer) -> None:
        """Tell ``observers`` the stored pass again, event by event, in its order."""
        events: list[tuple[int, int, Any]] = [(rec.clock, 2, rec) for rec in self.ops]
        for calls in self.calls.values():
            for c in calls:
                events += [(c.start, 0, c), (c.end, 1, c)]
        events.sort(key=lambda e: e[0])
        for _, kind, item in events:
            for obs in observers:
                (obs.enter, obs.exit, obs.op)[kind](item)

    def started_after(self, module: str) -> frozenset[str]:
        """Modules first called after ``module``'s first call returned."""
        calls = self.calls.get(module)
        if not calls:
            return frozenset()
        end = calls[-1].end
        return frozenset(n for n, cs in self.calls.items() if cs[0].start > end)


def record(model: nn.Module, example_inputs: Any, grad: bool = False) -> OpLog:
    """One stored pass of ``model`` (see :class:`OpLog`; ``grad``: module docstring)."""
    log = OpLog(grad=grad)
    log.output = run(model, example_inputs, [log], grad=grad)
    return log
