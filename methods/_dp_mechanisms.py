"""The building blocks of :mod:`methods.dp` (its public surface): budget and bound checks,
diffprivlib's Laplace noise on whole arrays, Su et al.'s budget split and iteration count, and the
objective-perturbation logistic regression."""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np
from diffprivlib.accountant import BudgetAccountant
from diffprivlib.mechanisms import Laplace
from diffprivlib.models import LogisticRegression as _DiffprivlibLR
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from methods._estimator import binary_tags, encode_binary

#: Su et al.'s coordinate normalisation factor rho (their empirical constant, data in [-1, 1]^d).
SU_RHO = 0.225
#: Largest grid of the histogram seeding (cells are noised one by one, empty or not).
MAX_INIT_CELLS = 100_000
#: Replace-one moves one row between two cells of a histogram: L1 sensitivity 2.
HISTOGRAM_SENSITIVITY = 2.0
#: Curvature bound of the logistic loss (|l''| <= 1/4), the ``c`` of Chaudhuri et al.
LOGISTIC_CURVATURE = 0.25
def check_epsilon(epsilon, name: str = "epsilon") -> float:
    """A privacy budget in (0, inf]; anything else is refused naming the parameter."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, Real) or math.isnan(epsilon):
        raise ValueError(f"{name}={epsilon!r}; expected a number in (0, inf]")
    if epsilon <= 0:
        raise ValueError(f"{name}={epsilon!r}; expected epsilon > 0 (epsilon <= 0 is no budget at all)")
    return float(epsilon)


def check_bounds(bounds, n_features: int, name: str = "bounds") -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` public bounds, scalars or one per feature, as two float arrays."""
    if bounds is None:
        raise ValueError(f"{name} is missing: give the public (lower, upper) bounds of every feature; "
                         "they are never read from the data")
    try:
        lower, upper = (np.broadcast_to(np.asarray(b, dtype=float), (n_features,)).copy() for b in bounds)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={bounds!r}; expected (lower, upper), each a number or "
                         f"{n_features} numbers") from exc
    if not (np.isfinite(lower).all() and np.isfinite(upper).all() and (lower < upper).all()):
        raise ValueError(f"{name}={bounds!r}; expected finite lower < upper for every feature")
    return lower, upper


def su_split(epsilon_iter: float, n_dims: int, rho: float = SU_RHO) -> tuple[float, float]:
    """Su et al.'s split of one iteration's budget: ``(eps_count, eps_sum)`` with
    ``eps_count : eps_sum = cbrt(4 d rho^2) : 1`` and ``eps_count + d * eps_sum = epsilon_iter``
    (``eps_sum`` is spent once per dimension)."""
    c = np.cbrt(4 * n_dims * rho**2)
    unit = epsilon_iter / (n_dims + c)
    return c * unit, unit


def su_iterations(epsilon: float, n_clusters: int, n_samples: int, n_dims: int, rho: float = SU_RHO) -> int:
    """Su et al.'s iteration count heuristic (as in diffprivlib): between 2 and 7, more with more
    budget, fewer with more clusters or dimensions. Uses only public quantities (n, k, d, ε)."""
    eps_m = math.sqrt(500 * n_clusters**3 / n_samples**2 * (n_dims + np.cbrt(4 * n_dims * rho**2)) ** 3)
    return int(max(min(epsilon / eps_m, 7), 2))


def lloyd_iterations(n_iter, epsilon: float, n_clusters: int, n_samples: int, n_dims: int,
                     rho: float = SU_RHO) -> int:
    """DPLloyd's iteration count: ``n_iter`` if a positive integer, :func:`su_iterations` if "auto"."""
    if isinstance(n_iter, str) and n_iter == "auto":
        return su_iterations(epsilon, n_clusters, n_samples, n_dims, rho)
    if isinstance(n_iter, Integral) and not isinstance(n_iter, bool) and n_iter >= 1:
        return int(n_iter)
    raise ValueError(f"n_iter={n_iter!r}; expected a positive integer or 'auto'")


def laplace_noise(values, epsilon: float, sensitivity: float, rng) -> np.ndarray:
    """``values`` plus diffprivlib's Laplace noise of scale ``sensitivity / epsilon``, elementwise.

    The mechanism object validates the parameters and owns the generator; with a numpy generator the
    draws go through its sampler on whole arrays (same formula as ``Laplace.randomise``, one call
    instead of one per value), with ``SystemRandom`` (``rng=None``) value by value.
    """
    values = np.asarray(values, dtype=float)
    mech = Laplace(epsilon=epsilon, sensitivity=sensitivity, random_state=rng)
    if not isinstance(mech._rng, np.random.RandomState | np.random.Generator):
        return np.reshape([mech.randomise(v) for v in values.ravel()], values.shape)
    scale = mech.sensitivity / (mech.epsilon - np.log(1 - mech.delta))
    u = [mech._rng.random(values.shape) for _ in range(4)]
    return values - scale * mech._laplace_sampler(*u)


def jacobian_epsilon(C: float, curvature: float = LOGISTIC_CURVATURE, row_norm: float = 1.0) -> float:
    """The part of the budget objective perturbation loses to the Jacobian of the minimiser map,
    ``2 log(1 + c R^2 C)`` (Chaudhuri et al. 2011, Alg. 2, with Lambda = 1 / (C n))."""
    return 2 * math.log1p(curvature * row_norm**2 * C)


def lr_C_for(epsilon: float, share: float, C_max: float) -> float:
    """A regularisation strength that leaves the Jacobian term ``share`` of the LR budget:
    ``2 log(1 + C / 4) = share * epsilon``, capped at ``C_max`` (reached as epsilon grows)."""
    if math.isinf(epsilon):
        return C_max
    return min(C_max, 4 * math.expm1(share * epsilon / 2))


class DPLogisticRegression(ClassifierMixin, BaseEstimator):
    """ε-DP logistic regression: diffprivlib's objective perturbation (Chaudhuri et al. 2011) on rows
    mapped into the unit ball, with the intercept as a regularised constant column.

    Rows are clipped to L2 norm ``data_norm`` (a public bound), a constant 1 is appended and the
    result divided by ``sqrt(data_norm^2 + 1)``. In the unit ball diffprivlib's Jacobian term
    ``2 log(1 + c R C)`` equals Chaudhuri et al.'s ``2 log(1 + c R^2 C)``, and a regularised intercept
    keeps the objective strongly convex in every direction, as their proof needs (diffprivlib's own
    intercept is not penalised).

    Parameters
    ----------
    epsilon : float in (0, inf]
    data_norm : float
        Public bound on the L2 norm of a row of ``X``. Required; rows beyond it are clipped.
    C : float
        Inverse regularisation strength (scikit-learn's meaning, on the unit-ball rows).
    max_iter, tol : L-BFGS limits.
    random_state : int, RandomState or None (None: diffprivlib's ``SystemRandom``).
    accountant : diffprivlib BudgetAccountant, optional

    A binary scikit-learn classifier: ``classes_`` are the two labels of ``y``; ``coef_`` and
    ``intercept_`` (the ε-DP release) score ``classes_[1]``.
    """

    def __init__(self, *, epsilon=1.0, data_norm=None, C=1.0, max_iter=1000, tol=1e-8, random_state=None,
                 accountant=None):
        self.epsilon = epsilon
        self.data_norm = data_norm
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.accountant = accountant

    def _unit_rows(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        X = X * np.minimum(1.0, self.data_norm / np.where(norms > 0, norms, 1.0))
        return np.hstack([X, np.ones((len(X), 1))]) / math.sqrt(self.data_norm**2 + 1)

    def __sklearn_tags__(self):
        return binary_tags(super().__sklearn_tags__())

    def fit(self, X, y):
        epsilon = check_epsilon(self.epsilon)
        X, y = validate_data(self, X, y, dtype=np.float64)
        y = encode_binary(self, y)
        if self.data_norm is None:
            raise ValueError("data_norm is missing: give a public bound on the L2 norm of a row of X; "
                             "it is never read from the data")
        if not (isinstance(self.data_norm, Real) and 0 < self.data_norm < math.inf):
            raise ValueError(f"data_norm={self.data_norm!r}; expected a positive finite number")
        if not (isinstance(self.C, Real) and 0 < self.C < math.inf):
            raise ValueError(f"C={self.C!r}; expected a positive finite number")
        self.model_ = _DiffprivlibLR(epsilon=epsilon, data_norm=1.0, C=float(self.C), fit_intercept=False,
                                     max_iter=self.max_iter, tol=self.tol, random_state=self.random_state,
                                     accountant=BudgetAccountant.load_default(self.accountant))
        with warnings.catch_warnings():
            # diffprivlib 0.6.6 passes an option scipy 1.17 deprecates; not ours to fix
            warnings.filterwarnings("ignore", message=".*L-BFGS-B solver are deprecated",
                                    category=DeprecationWarning)
            self.model_.fit(self._unit_rows(X), y)
        self.n_iter_ = int(np.max(getattr(self.model_, "n_iter_", 1)))
        w = self.model_.coef_[0] / math.sqrt(self.data_norm**2 + 1)
        self.coef_, self.intercept_ = w[None, :-1], w[-1:]
        return self

    def decision_function(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.model_.decision_function(self._unit_rows(X))

    def predict_proba(self, X):
        p = expit(self.decision_function(X))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        positive = self.decision_function(X) >= 0.0
        return self.classes_[positive.astype(np.int64)]

    def noise_epsilon(self) -> float:
        """ε' of the noise vector b (density ∝ exp(-ε'‖b‖/2)) implied by diffprivlib's calibration."""
        eps, jac = float(self.epsilon), jacobian_epsilon(self.C)
        return eps - jac if eps - jac > 0 else eps / 2


def check_method_options(m) -> None:
    """The DP method's options that no single mechanism checks (``m`` a :class:`~methods.dp.DPMethod`)."""
    if not (m.class_prior is None or m.class_prior == "dp"
            or (isinstance(m.class_prior, Real) and 0 < m.class_prior < 1)):
        raise ValueError(f"class_prior={m.class_prior!r}; expected 'dp', a probability in (0, 1) or null")
    if m.class_prior == "dp" and not m.prior_share > 0:
        raise ValueError("class_prior='dp' needs prior_share > 0 (the budget of the noisy count)")
    if m.lr_C != "auto" and not (isinstance(m.lr_C, Real) and 0 < m.lr_C < math.inf):
        raise ValueError(f"lr_C={m.lr_C!r}; expected a positive number or 'auto'")
    if not 0 < m.lr_jacobian_share < 1:
        raise ValueError(f"lr_jacobian_share={m.lr_jacobian_share!r}; expected a fraction in (0, 1)")
