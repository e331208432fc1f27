"""What the encrypted and the plaintext logistic regression share: the sigmoid polynomial, the
Nesterov schedule, class weights and the masked key-holder update.

Keeping these in one place is what makes the plaintext reference *identical* to the encrypted
run: both call the same functions with the same numbers, so any AUC gap between them is the cost of
encryption alone (CKKS noise), not of a different approximation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SigmoidPoly:
    """sigma(z) ~ 0.5 + a1 z + a3 z^3, least-squares fitted on [-interval, interval]."""

    interval: float
    a1: float
    a3: float

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return 0.5 + self.a1 * z + self.a3 * z**3


def fit_sigmoid_poly(interval: float) -> SigmoidPoly:
    """Odd degree-3 least-squares fit of the logistic function on a uniform grid of the interval.

    Degree 3 is the lowest odd degree that bends (degree 1 is least squares, not logistic
    regression) and it costs two multiplicative levels, which is what the parameters allow.
    """
    if not (np.isfinite(interval) and interval > 0):
        raise ValueError(f"interval={interval!r}; expected a positive number (the fit is on [-R, R])")
    z = np.linspace(-interval, interval, 4001)
    A = np.stack([z, z**3], axis=1)
    coef, *_ = np.linalg.lstsq(A, 1.0 / (1.0 + np.exp(-z)) - 0.5, rcond=None)
    return SigmoidPoly(float(interval), float(coef[0]), float(coef[1]))


def nesterov_schedule(n_iter: int, learning_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Step sizes eta_t and momentum weights gamma_t of Nesterov's accelerated gradient.

    ``w_{t+1} = v_t - eta_t grad(v_t)``; ``v_{t+1} = (1 - gamma_t) w_{t+1} + gamma_t w_t`` with
    ``gamma_t = (1 - lambda_t) / lambda_{t+1}`` and ``lambda_{t+1} = (1 + sqrt(1 + 4 lambda_t^2)) / 2``
    (the iDASH 2017 recipe of Kim et al.); ``eta_t = learning_rate / (1 + t / n_iter)`` decays
    gently so the last steps settle instead of oscillating.
    """
    lam = [0.0]
    for _ in range(n_iter + 1):
        lam.append((1.0 + np.sqrt(1.0 + 4.0 * lam[-1] ** 2)) / 2.0)
    lam = np.array(lam[1:])
    gamma = (1.0 - lam[:-1]) / lam[1:]
    eta = learning_rate / (1.0 + np.arange(n_iter) / max(n_iter, 1))
    return eta, gamma


def class_weights(class_weight, n_neg: int, n_pos: int) -> tuple[float, float]:
    """(weight of y=0, weight of y=1) from the class counts."""
    if n_neg <= 0 or n_pos <= 0:
        raise ValueError(f"need both classes to train; got {n_neg} negatives and {n_pos} positives")
    if class_weight is None:
        return 1.0, 1.0
    if isinstance(class_weight, str) and class_weight == "balanced":
        n = n_neg + n_pos
        return n / (2.0 * n_neg), n / (2.0 * n_pos)
    if isinstance(class_weight, dict) and set(class_weight) <= {0, 1}:
        return float(class_weight.get(0, 1.0)), float(class_weight.get(1, 1.0))
    raise ValueError(f"class_weight={class_weight!r}; expected None, 'balanced' or a dict {{0: w0, 1: w1}}")


@dataclass
class NesterovState:
    """Weights ``w`` and look-ahead point ``v`` (possibly additively masked) and the step index."""

    w: np.ndarray
    v: np.ndarray
    t: int = 0


def nesterov_step(state: NesterovState, raw_grad: np.ndarray, *, total_weight: float, l2: float,
                  penalised: np.ndarray, eta: np.ndarray, gamma: np.ndarray) -> NesterovState:
    """One update from the raw weighted gradient sum ``sum_i c_i x_i (sigma(x_i.v) - y_i)``.

    The map is linear in (w, v, raw_grad), so it can run on additively masked values: applied to
    the masks instead of the values it gives the new masks (that is how the server tracks them).
    """
    t = state.t
    grad = raw_grad / total_weight + l2 * penalised * state.v
    w_next = state.v - eta[t] * grad
    v_next = (1.0 - gamma[t]) * w_next + gamma[t] * state.w
    return NesterovState(w_next, v_next, t + 1)

