"""Checks for plan data read from files: one error type that names the file and field.

Plans are JSON written by prunekit, but a saved folder may come from anywhere, so every
value is checked for type and range before it reaches a model. Each checker takes the
value and its *field path* (``"cuts[3].removed"``) and returns the value in its Python
form, or raises :class:`PlanError` naming that path. :func:`prunekit.load` adds the file
name (``"plan.json: cuts[3].removed: index 70 out of range ..."``).
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_ITEMS = 50_000_000  # list lengths beyond any real model (a file cap bounds them anyway)
MAX_NAME = 4096  # module / parameter names


class PlanError(ValueError):
    """A plan or saved folder that prunekit refuses: ``file`` and ``field`` say where.

    Raised for every bad file that :func:`prunekit.load` reads (manifest, plans, steps,
    weights, example inputs) and for plans that do not fit the model they are replayed
    on. A subclass of ValueError, so ``except ValueError`` keeps working.
    """

    def __init__(self, message: str, *, file: str = "", field: str = "") -> None:
        self.message = message
        self.file = file
        self.field = field
        super().__init__(": ".join(p for p in (file, field, message) if p))

    def located(self, file: str | None = None, prefix: str = "") -> PlanError:
        """The same error in ``file`` (unless one is named already), its field under
        ``prefix`` (``"steps[2].plan"`` + ``"cuts[0]"``)."""
        return PlanError(self.message, file=self.file or file or "",
                         field=join(prefix, self.field))


def join(prefix: str, field: str) -> str:
    """``prefix`` + ``field`` as one path (``a`` + ``b[0]`` -> ``a.b[0]``)."""
    if not prefix or not field:
        return prefix or field
    return prefix + field if field.startswith("[") else f"{prefix}.{field}"


def key(field: str, name: str) -> str:
    """Field path of a mapping entry: ``attrs['layer1.0.conv1']``."""
    return f"{field}[{name!r}]"


def kind_of(value: Any) -> str:
    """JSON-ish name of a value's type for messages (``null`` for None)."""
    return "null" if value is None else type(value).__name__


def record(value: Any, field: str, required: Iterable[str] = (),
           optional: Iterable[str] = ()) -> dict[str, Any]:
    """A JSON object with every ``required`` key and no keys beyond ``optional``."""
    if not isinstance(value, dict):
        raise PlanError(f"expected an object, got {kind_of(value)}", field=field)
    required, allowed = tuple(required), {*required, *optional}
    missing = [k for k in required if k not in value]
    if missing:
        raise PlanError(f"missing {', '.join(map(repr, missing))}", field=field)
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise PlanError(f"unknown field(s) {', '.join(map(repr, unknown[:5]))}", field=field)
    return value


def integer(value: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
    """An int (not a bool, not a float; numpy integers count) in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PlanError(f"expected an integer, got {kind_of(value)}", field=field)
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise PlanError(f"{short(value)} is out of range [{lo_s}, {hi_s}]", field=field)
    return value


def short(value: int) -> str:
    """An int for a message (huge ones abbreviated)."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:10]}...({len(text)} digits)"


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise PlanError(f"expected true or false, got {kind_of(value)}", field=field)
    return value


def string(value: Any, field: str, choices: Iterable[str] | None = None,
           max_len: int = MAX_NAME) -> str:
    """A str of at most ``max_len`` characters (one of ``choices`` if given)."""
    if not isinstance(value, str):
        raise PlanError(f"expected a string, got {kind_of(value)}", field=field)
    if len(value) > max_len:
        raise PlanError(f"string longer than {max_len} characters", field=field)
    if choices is not None:
        options = tuple(choices)
        if value not in options:
            raise PlanError(f"{value[:60]!r} is not one of {list(options)}", field=field)
    return value


def items(value: Any, field: str, check: Callable[[Any, str], T],
          max_len: int = MAX_ITEMS) -> list[T]:
    """A JSON array (or tuple), each element checked by ``check(element, "field[i]")``."""
    if not isinstance(value, list | tuple):
        raise PlanError(f"expected a list, got {kind_of(value)}", field=field)
    if len(value) > max_len:
        raise PlanError(f"more than {max_len} entries", field=field)
    return [check(v, f"{field}[{i}]") for i, v in enumerate(value)]


def mapping(value: Any, field: str, check: Callable[[Any, str], T],
            max_len: int = MAX_ITEMS, dotted: bool = False) -> dict[str, T]:
    """A JSON object with string keys, each value checked by ``check(v, "field['k']")``
    (``"field.k"`` with ``dotted``, for attribute names)."""
    if not isinstance(value, dict):
        raise PlanError(f"expected an object, got {kind_of(value)}", field=field)
    if len(value) > max_len:
        raise PlanError(f"more than {max_len} entries", field=field)
    out = {}
    for k, v in value.items():
        string(k, field)
        out[k] = check(v, f"{field}.{k}" if dotted and k.isidentifier() else key(field, k))
    return out


def indices(value: Any, field: str, size: int | None = None, unique: bool = True,
            lo: int = 0) -> list[int]:
    """A list of ints ``>= lo`` (and ``< size`` when given), without repeats if ``unique``."""
    hi = None if size is None else size - 1
    out = items(value, field, lambda v, f: integer(v, f, lo, hi))
    if unique and len(set(out)) != len(out):
        seen: set[int] = set()
        for i in out:
            if i in seen:
                raise PlanError(f"index {i} appears twice", field=field)
            seen.add(i)
    return out


def strings(value: Any, field: str) -> list[str]:
    return items(value, field, string)


def plain_size(value: Any, field: str) -> int | list[int] | None:
    """What a plan may record for a size: an int, a list of ints, or null."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, list):
        return items(value, field, integer, max_len=64)
    raise PlanError(f"expected an integer, a list of integers or null, got {kind_of(value)}",
                    field=field)


def _no_constant(name: str) -> None:
    raise PlanError(f"{name} is not allowed (numbers must be finite)")


def parse_json(data: str | bytes) -> Any:
    """Parse JSON text, refusing what Python's parser would turn into other exceptions:
    bytes that are not UTF-8, NaN/Infinity, nesting deeper than the interpreter's
    recursion limit, integers with more digits than ``int`` accepts."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise PlanError(f"not UTF-8 text (byte {err.start})") from None
    try:
        return json.loads(data, parse_constant=_no_constant)
    except PlanError:
        raise
    except RecursionError:
        raise PlanError("JSON nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, and int() of a number too long
        raise PlanError(f"not valid JSON: {str(err)[:200]}") from None
