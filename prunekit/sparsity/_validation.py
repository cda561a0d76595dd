"""Input checks shared by the solvers: shapes, finiteness, capabilities."""

from __future__ import annotations

from typing import Any

from . import _backend as B


def check_problem(X: Any, y: Any) -> None:
    """ValueError if ``X`` is not 2-D, rows differ from ``y``, or either has NaN/inf."""
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D array, got shape {tuple(X.shape)}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y: has {y.shape[0]} rows but X has {X.shape[0]}")
    for name, a in (("X", X), ("y", y)):
        finite = bool(a.isfinite().all()) if B.is_torch(a) else bool(_np_isfinite(a))
        if not finite:
            raise ValueError(f"{name}: contains NaN or infinity")


def _np_isfinite(a: Any) -> bool:
    import numpy as np

    return np.isfinite(a).all()


def require(solver: str, role: str, obj: Any, names: tuple[str, ...]) -> None:
    """TypeError naming every method or attribute ``obj`` lacks for ``solver``."""
    missing = [n for n in names if not hasattr(obj, n)]
    if missing:
        raise TypeError(f"{solver} needs a {role} providing {', '.join(missing)}; "
                        f"{type(obj).__name__} does not")
