"""One progress helper for every step that takes more than a moment: rich, on stderr.

Functions that do long work (tracing, the MAC and speed searches, timing, ``bench``) take
``progress: bool | None``: ``True`` shows progress, ``False`` hides it, ``None`` (their
default) follows the enclosing :func:`showing` scope — the CLI opens one from ``--quiet`` —
and outside any scope shows progress when stderr is a terminal (an interactive session),
not when it is piped, captured or logged. A scope is a context variable, like
``torch.no_grad``: it sets a default for the calls inside it and nothing else.

* :func:`task` — a bar (``total`` known) or spinner (``total=None``) with elapsed time;
* :func:`track` — iterate with a bar;
* :func:`stage` — a spinner around one step;
* :func:`stages` — a ``say(message)`` callback for code that reports stages by message
  (:func:`prunekit.hardware.prune_to_speedup`): each message closes the previous stage.

rich allows one live display at a time, so nested tasks share the outermost one. Output
goes to stderr, so ``--json`` on stdout stays parseable; finished lines stay on screen with
their elapsed time (a log of where the time went).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
Say = Callable[[str], None]

_SHOW: ContextVar[bool | None] = ContextVar("prunekit_progress", default=None)
_LIVE: dict[str, Any] = {"progress": None, "depth": 0}  # the one live rich display


def interactive() -> bool:
    """Whether stderr is a terminal someone is watching."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def enabled(progress: bool | None = None) -> bool:
    """``bool(progress)``; when None, the enclosing :func:`showing` scope's setting, and
    outside any scope whether stderr is a terminal."""
    if progress is not None:
        return bool(progress)
    scoped = _SHOW.get()
    return interactive() if scoped is None else scoped


@contextlib.contextmanager
def showing(on: bool = True) -> Iterator[None]:
    """Within the block, calls given ``progress=None`` show progress when ``on``."""
    token = _SHOW.set(bool(on))
    try:
        yield
    finally:
        _SHOW.reset(token)


class Task:
    """Handle of one line of the live display: ``advance`` it, change its total or text."""

    def __init__(self, progress: Any = None, task_id: Any = None) -> None:
        self._progress, self._id = progress, task_id

    def advance(self, steps: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._id, steps)
            _steps_text(self._progress, self._id)

    def update(self, total: float | None = None, description: str | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._id, total=total, description=description)
            _steps_text(self._progress, self._id)


def _display() -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    steps = TextColumn("{task.fields[steps]}")  # "3/14" for counted tasks, blank for stages
    return Progress(SpinnerColumn(finished_text="[green]✓[/]"),
                    TextColumn("{task.description}"), BarColumn(bar_width=24), steps,
                    TimeElapsedColumn(), console=Console(stderr=True), transient=False)


def _steps_text(display: Any, task_id: Any) -> None:
    task = display.tasks[[t.id for t in display.tasks].index(task_id)]
    if task.fields.get("counted"):
        display.update(task_id, steps=f"{task.completed:g}/{task.total:g}")


@contextlib.contextmanager
def _live() -> Iterator[Any]:
    """The shared live display, started by the outermost task and stopped after it."""
    if _LIVE["progress"] is None:
        _LIVE["progress"] = _display()
        _LIVE["progress"].start()
    _LIVE["depth"] += 1
    try:
        yield _LIVE["progress"]
    finally:
        _LIVE["depth"] -= 1
        if _LIVE["depth"] == 0:
            _LIVE["progress"].stop()
            _LIVE["progress"] = None


@contextlib.contextmanager
def task(description: str, total: float | None = None,
         progress: bool | None = None) -> Iterator[Task]:
    """One line: a bar over ``total`` steps, or a spinner when ``total`` is None; marked
    done (✓, elapsed time) when the block ends without an error."""
    if not enabled(progress):
        yield Task()
        return
    with _live() as display:
        task_id = display.add_task(description, total=total, steps="",
                                   counted=total is not None)
        _steps_text(display, task_id)
        yield Task(display, task_id)
        done = display.tasks[[t.id for t in display.tasks].index(task_id)]
        end = done.completed if done.fields["counted"] else 1  # done: the bar ends full
        display.update(task_id, total=end or 1, completed=end or 1)
        _steps_text(display, task_id)


def track(items: Iterable[T], description: str, progress: bool | None = None,
          total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a bar (``total`` defaults to ``len(items)``)."""
    if not enabled(progress):
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with task(description, total, progress) as bar:
        for item in items:
            yield item
            bar.advance()


@contextlib.contextmanager
def stage(description: str, progress: bool | None = None) -> Iterator[None]:
    """A spinner with elapsed time around one step."""
    with task(description, None, progress):
        yield


class _Stages:
    """``say(message)``: close the current stage, open one named ``message``."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._open = False

    def __call__(self, message: str) -> None:
        self.close()
        self._stack.enter_context(task(message, None, True))
        self._open = True

    def close(self, *exc_info: Any) -> None:
        """Mark the current stage done (or, given an exception's info, leave it unfinished)."""
        if self._open:
            self._stack.__exit__(*(exc_info or (None, None, None)))
            self._stack, self._open = contextlib.ExitStack(), False


@contextlib.contextmanager
def stages(progress: bool | None = None) -> Iterator[Say | None]:
    """A ``say(message)`` callback that shows each message as a stage (None when hidden)."""
    if not enabled(progress):
        yield None
        return
    say = _Stages()
    try:
        yield say
    except BaseException as err:
        say.close(type(err), err, err.__traceback__)
        raise
    say.close()
