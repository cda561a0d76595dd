"""Group-sparse optimization core (numpy and torch), independent of neural networks.

Penalties know their value, prox and subdifferential distance; datafits their value,
gradient and Lipschitz constants; solvers check up front that both provide what they
need. See ``docs/sparsity.md``.
"""

from .datafits import Logistic, MultinomialLogistic, Quadratic
from .groups import Groups
from .paths import (
    BudgetResult,
    PathResult,
    alpha_max,
    budget_search,
    default_solver,
    regularization_path,
)
from .penalties import (
    L1,
    FrobeniusNuclear,
    GroupLasso,
    NuclearNorm,
    OverlappingGroupLasso,
    SparseGroupLasso,
    TreeGroupLasso,
)
from .solvers import ADMM, FISTA, BlockCD, SolverResult

__all__ = ["Groups", "L1", "GroupLasso", "SparseGroupLasso", "TreeGroupLasso",
           "OverlappingGroupLasso", "NuclearNorm", "FrobeniusNuclear", "Quadratic", "Logistic",
           "MultinomialLogistic", "FISTA", "BlockCD", "ADMM", "SolverResult",
           "alpha_max", "regularization_path", "budget_search", "default_solver", "PathResult",
           "BudgetResult"]
