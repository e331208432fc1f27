"""Logistic regression trained on CKKS ciphertexts by an outside server (and its plaintext twin).

Full-batch gradient descent with Nesterov acceleration, a degree-3 least-squares sigmoid on a
stated interval, L2 regularisation and class weights, as in the iDASH 2017 approach of Kim et al.
The server sees only ciphertexts; the key holder (by default the owner, who receives the model
anyway) refreshes the encrypted weights once per iteration and sees only additively masked values.
``encrypted=False`` runs the very same descent in numpy (same polynomial, schedule, iterations,
class weights, preprocessing), so the cost of encryption is separable from that of the
approximations. See docs/he_logreg.md for the protocol, parameters and measurements.

Two entry points:

* :meth:`HELogisticRegression.fit` takes plaintext ``X, y`` held by the owner, who standardises,
  clips and encrypts them itself.
* :meth:`HELogisticRegression.fit_encrypted` takes the server-side inputs as serialized
  ciphertexts (column-major chunks of N/2 records) plus the key holder, e.g. feature columns and
  labels from the owner and the encrypted one-hot segment columns of the K-means stage.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import tenseal as ts
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from methods._estimator import binary_tags, encode_binary
from methods.base import Costs, Privacy
from methods.he.crypto import HEParams, check_logreg_params, column_chunks, load_context, logreg_params
from methods.he.logreg_keyholder import LRKeyHolder
from methods.he.logreg_math import (
    NesterovState,
    class_weights,
    fit_sigmoid_poly,
    nesterov_schedule,
    nesterov_step,
)
from methods.he.logreg_protocol import run_protocol
from methods.he.remote import lr_server
from methods.he.transport import Channel

__all__ = ["HELogisticRegression", "LRKeyHolder", "encrypt_column_with", "reference_gd"]


def reference_gd(A: np.ndarray, y: np.ndarray, *, n_iter: int, learning_rate: float, l2: float,
                 interval: float, w_neg: float, w_pos: float, penalised: np.ndarray | None = None):
    """The plaintext descent the server runs on ciphertexts, in numpy.

    ``A`` already holds the intercept column (last). Returns ``(w, out_of_interval)`` where the
    second is, per iteration, the fraction of rows whose linear score left [-interval, interval].
    """
    poly = fit_sigmoid_poly(interval)
    eta, gamma = nesterov_schedule(n_iter, learning_rate)
    c = np.where(y == 1, w_pos, w_neg)
    d = A.shape[1]
    if penalised is None:
        penalised = np.r_[np.ones(d - 1), 0.0]
    state = NesterovState(np.zeros(d), np.zeros(d))
    out = []
    for _ in range(n_iter):
        z = A @ state.v
        out.append(float(np.mean(np.abs(z) > interval)))
        state = nesterov_step(state, A.T @ (c * (poly(z) - y)), total_weight=float(c.sum()), l2=l2,
                              penalised=penalised, eta=eta, gamma=gamma)
    return state.w, np.array(out)


def encrypt_column_with(public_context: bytes, values: np.ndarray,
                        params: HEParams | None = None) -> list[bytes]:
    """Encrypt one column under a *public* context, chunked like the owner's columns.

    This is how another party (e.g. the K-means key holder returning each record's one-hot
    segment) hands the server a column under the logistic regression's key.
    """
    params = params or logreg_params()
    ctx = load_context(public_context, lazy=False)
    ctx.global_scale = params.delta
    chunks = column_chunks(np.asarray(values, float), params.slots)
    return [ts.ckks_vector(ctx, chunk).serialize() for chunk in chunks]


class HELogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression trained on ciphertexts (or, with ``encrypted=False``, its plaintext twin).

    A binary scikit-learn classifier: ``classes_`` are the two labels of ``y`` (0/1 or any other
    pair), ``predict_proba`` has one column per class. A pickled model keeps the decrypted model;
    the key holder (secret key) and the server's state are left out, so encrypted inference
    (:meth:`encrypted_decision_function`) needs the fitted object itself.

    Parameters
    ----------
    n_iter : int
        Nesterov iterations (each: two request/reply rounds with the key holder).
    learning_rate : float
        Initial step size; decays as ``learning_rate / (1 + t / n_iter)``.
    l2 : float
        L2 strength on the (standardised) weights; the intercept is not penalised.
    interval : float
        The sigmoid polynomial is fitted on ``[-interval, interval]``.
    class_weight : None, "balanced" or dict
        Record weights; ``"balanced"`` uses the class counts the owner knows (n / (2 n_class)).
    clip : float or None
        The owner standardises every column on its training data and clips to ``[-clip, clip]``
        before encryption, so that linear scores stay inside the interval (None: no clipping).
    poly_modulus_degree, coeff_mod_bit_sizes, scale_bits : CKKS parameters (128-bit secure by default).
    allow_insecure : bool
        Accept parameters below 128-bit security (tests only; recorded in ``costs_``).
    encrypted : bool
        False runs the identical descent in numpy.
    random_state : int or None
        Seeds the server's masks.
    keep_transcript : bool
        Keep what the key holder decrypts and what crosses the channel (security tests).
    """

    def __init__(self, n_iter=10, learning_rate=2.0, l2=1e-3, interval=8.0, class_weight="balanced",
                 clip=4.0, poly_modulus_degree=8192, coeff_mod_bit_sizes=(50, 36, 36, 36, 60),
                 scale_bits=36, allow_insecure=False, encrypted=True, random_state=0,
                 keep_transcript=False):
        self.n_iter = n_iter
        self.learning_rate = learning_rate
        self.l2 = l2
        self.interval = interval
        self.class_weight = class_weight
        self.clip = clip
        self.poly_modulus_degree = poly_modulus_degree
        self.coeff_mod_bit_sizes = coeff_mod_bit_sizes
        self.scale_bits = scale_bits
        self.allow_insecure = allow_insecure
        self.encrypted = encrypted
        self.random_state = random_state
        self.keep_transcript = keep_transcript

    # -- validation ------------------------------------------------------------------------------
    def _check_params(self) -> HEParams:
        if not (isinstance(self.n_iter, (int, np.integer)) and self.n_iter >= 1):
            raise ValueError(f"n_iter={self.n_iter!r}; expected an integer >= 1")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate={self.learning_rate!r}; expected a positive number")
        if not (np.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2={self.l2!r}; expected a number >= 0")
        if self.clip is not None and not (np.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"clip={self.clip!r}; expected a positive number or None")
        self.poly_ = fit_sigmoid_poly(self.interval)
        params = logreg_params(int(self.poly_modulus_degree), tuple(int(b) for b in self.coeff_mod_bit_sizes),
                               int(self.scale_bits), bool(self.allow_insecure))
        if self.encrypted:
            check_logreg_params(params)
        return params

    def _transform(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, float) - self.mean_) / self.scale_
        return Z if self.clip_ is None else np.clip(Z, -self.clip_, self.clip_)

    def _set_model(self, w: np.ndarray) -> None:
        """Weights on the standardised columns (+ intercept) -> coef_ / intercept_ on the input."""
        self.w_ = w
        self.coef_ = (w[:-1] / self.scale_)[None, :]
        self.intercept_ = np.array([w[-1] - float(np.sum(w[:-1] * self.mean_ / self.scale_))])

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, X, y):
        """Owner-side entry: standardise and clip, encrypt, let the server train, decrypt the model."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        y = encode_binary(self, y)
        params = self._check_params()
        self.costs_ = Costs()
        t0 = time.perf_counter()
        with self.costs_.phase("owner_preprocess", "owner"):
            self.mean_ = X.mean(axis=0)
            sd = X.std(axis=0)
            self.scale_ = np.where(sd > 0, sd, 1.0)
            self.clip_ = self.clip
            Z = self._transform(X)
        counts = (int((y == 0).sum()), int((y == 1).sum()))
        if not self.encrypted:
            with self.costs_.phase("plaintext_gd", "owner"):
                w_neg, w_pos = class_weights(self.class_weight, *counts)
                w, self.out_of_interval_ = reference_gd(
                    np.hstack([Z, np.ones((len(Z), 1))]), y, n_iter=self.n_iter,
                    learning_rate=self.learning_rate, l2=self.l2, interval=self.interval,
                    w_neg=w_neg, w_pos=w_pos)
            self._set_model(w)
            self._finish(counts, Z, time.perf_counter() - t0)
            return self
        with self.costs_.phase("he_keys", "owner"):
            key_holder = LRKeyHolder(params, keep_transcript=self.keep_transcript)
        with self.costs_.phase("he_encrypt", "owner"):
            columns = [key_holder.encrypt_column(Z[:, j], key_holder.column_level) for j in range(Z.shape[1])]
            labels = key_holder.encrypt_column(y)
        self._fit_ciphertexts(key_holder, columns, labels, len(y), counts, params)
        self._set_model(self.w_)
        self._finish(counts, Z, time.perf_counter() - t0)
        return self

    def fit_encrypted(self, key_holder: LRKeyHolder, columns: Sequence[Sequence[bytes]],
                      labels: Sequence[bytes], n_rows: int, class_counts: tuple[int, int],
                      extra_columns: Sequence[Sequence[bytes]] = ()):
        """Server-side entry: train on serialized ciphertexts under ``key_holder``'s public context.

        ``columns`` and ``extra_columns`` are lists of columns, each a list of chunk ciphertexts
        (one feature of up to N/2 records per ciphertext, last chunk zero-padded); ``labels`` the
        0/1 labels chunked alike. Extra columns (e.g. the K-means one-hot segments, encrypted
        fresh under ``key_holder.public_context()`` with :func:`encrypt_column_with`) come after
        ``columns``. Columns are used as given: standardise them before encrypting. The server
        adds the intercept column. ``class_counts = (n_neg, n_pos)`` are counts the owner knows.
        The learned ``coef_`` applies to the encrypted columns as they are.
        """
        params = self._check_params()
        if not self.encrypted:
            raise ValueError("fit_encrypted needs encrypted=True")
        self.costs_ = Costs()
        t0 = time.perf_counter()
        all_columns = list(columns) + list(extra_columns)
        self._fit_ciphertexts(key_holder, all_columns, labels, int(n_rows), tuple(class_counts), params)
        d = len(all_columns)
        self.mean_, self.scale_, self.clip_ = np.zeros(d), np.ones(d), None  # columns used as given
        self.n_features_in_, self.classes_ = d, np.array([0, 1])
        self._set_model(self.w_)
        self.out_of_interval_final_ = None
        self._record(tuple(class_counts), time.perf_counter() - t0)
        return self

    def _fit_ciphertexts(self, key_holder, columns, labels, n_rows, counts, params) -> None:
        if key_holder.params != params:
            raise ValueError(f"the key holder's parameters {key_holder.params} differ from this "
                             f"estimator's {params}; build both from the same parameters")
        enc0, dec0 = key_holder.encryptions, key_holder.decryptions  # data encrypted before this
        w_neg, w_pos = class_weights(self.class_weight, *counts)
        self.class_weights_ = (w_neg, w_pos)
        eta, gamma = nesterov_schedule(self.n_iter, self.learning_rate)
        kh = "owner"
        channel = Channel(keep_transcript=self.keep_transcript, stage="upload")
        public = channel.send(kh, "server", key_holder.public_context(), tag="public_context")
        channel.send("owner", "server", [p for col in columns for p in col], tag="columns")
        channel.send("owner", "server", list(labels), tag="labels")
        with self.costs_.phase("he_load", "server"):
            server = lr_server(public, params, seed=self.random_state, channel=channel)
            intercept = [server.dump(ts.ckks_vector(server.ctx, ch))
                         for ch in column_chunks(np.ones(n_rows), params.slots)]
            server.receive_data(list(columns) + [intercept], labels, n_rows)
        d = server.d
        penalised = np.r_[np.ones(d - 1), 0.0]
        total_weight = w_neg * counts[0] + w_pos * counts[1]
        final = run_protocol(server, key_holder, channel, poly=self.poly_, w_neg=w_neg, w_pos=w_pos,
                             total_weight=total_weight, l2=self.l2, penalised=penalised, eta=eta,
                             gamma=gamma, kh=kh, costs=self.costs_)
        channel.send("server", "owner", final, tag="model_encrypted")
        with self.costs_.phase("owner_decrypt", "owner"):
            self.w_ = np.array([key_holder.decrypt_model(p)[0] for p in final])
        channel.charge(self.costs_)
        self.channel_, self.server_, self.key_holder_ = channel, server, key_holder
        self.params_ = params
        self.costs_.extra["he_ops"] = server.ops.as_dict()
        self.costs_.extra["keyholder_ops"] = {"decrypt": key_holder.decryptions - dec0,
                                              "encrypt": key_holder.encryptions - enc0}
        self.costs_.extra["owner_data_encryptions"] = enc0
        self.costs_.extra["channel_stages"] = {k: dict(v) for k, v in channel.stages.items()}

    def _finish(self, counts, Z, wall) -> None:
        z = Z @ self.w_[:-1] + self.w_[-1]
        self.out_of_interval_final_ = float(np.mean(np.abs(z) > self.interval))
        self._record(counts, wall)

    def _record(self, counts, wall) -> None:
        w_neg, w_pos = class_weights(self.class_weight, *counts)
        self.class_weights_ = (w_neg, w_pos)
        self.costs_.extra["wall_s"] = wall
        self.costs_.extra["he_logreg"] = {
            "encrypted": bool(self.encrypted),
            "n_iter": int(self.n_iter),
            "sigmoid": {"degree": 3, "interval": self.interval, "a1": self.poly_.a1, "a3": self.poly_.a3},
            "class_weight": self.class_weight,
            "class_weight_counts": "owner-known label counts (n_neg, n_pos)",
            "class_counts": list(counts),
            "class_weights": [w_neg, w_pos],
            "out_of_interval_final": self.out_of_interval_final_,
            "params": None if not self.encrypted else {
                "poly_modulus_degree": self.poly_modulus_degree,
                "coeff_mod_bit_sizes": list(self.coeff_mod_bit_sizes),
                "scale_bits": self.scale_bits,
                "allow_insecure": bool(self.allow_insecure),
                "galois_keys": False,
            },
        }
        self.privacy_ = Privacy(
            threat_model=("plaintext reference: the owner trains in the clear" if not self.encrypted else
                          "honest-but-curious server with the public context only; key holder "
                          "(default: the owner) sees additively masked values only"),
            revealed={} if not self.encrypted else {
                "server": "ciphertexts only: feature columns, labels, record weights, scores, "
                          "gradients and weights, all encrypted; in the clear: n_rows, d, the class "
                          "weights and so the class counts (n_neg, n_pos) they come from, the "
                          "polynomial, schedule and its own masks",
                "keyholder": "masked per-record scores z+R and masked record weights u+R (uniform "
                             "masks of half-width 2^20), masked gradient slot vectors and their masked "
                             "sums, masked weights during training; the final weights",
                "owner": "its own data and the final model",
            },
        )

    # -- prediction ------------------------------------------------------------------------------
    def __sklearn_tags__(self):
        return binary_tags(super().__sklearn_tags__())

    def __getstate__(self):
        state = super().__getstate__()
        for name in ("key_holder_", "server_"):  # the secret key, the server's live contexts
            state.pop(name, None)
        return state

    def decision_function(self, X) -> np.ndarray:
        """The linear score of the positive class ``classes_[1]`` (owner side, decrypted model)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self._transform(X) @ self.w_[:-1] + self.w_[-1]

    def predict_proba(self, X) -> np.ndarray:
        """Owner-side scoring with the decrypted model: columns P(classes_[0]), P(classes_[1])
        (exact sigmoid)."""
        p = expit(self.decision_function(X))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X) -> np.ndarray:
        positive = self.decision_function(X) >= 0.0
        return self.classes_[positive.astype(np.int64)]

    def encrypted_decision_function(self, X) -> np.ndarray:
        """Encrypted inference: the owner encrypts new rows, the server scores them under the
        encrypted model, the key holder decrypts the scores. Matches :meth:`decision_function`."""
        check_is_fitted(self)
        if not hasattr(self, "server_"):
            raise RuntimeError("encrypted inference needs a model fitted with encrypted=True (in this "
                               "process: a pickled model holds no keys)")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        Z = np.hstack([self._transform(X), np.ones((len(X), 1))])
        cols = [self.key_holder_.encrypt_column(Z[:, j]) for j in range(Z.shape[1])]
        self.channel_.request("owner", "server", [p for c in cols for p in c], tag="inference_rows")
        scores = self.server_.score_encrypted(cols)
        self.channel_.send("server", "owner", scores, tag="inference_scores")
        z = np.concatenate([self.key_holder_.decrypt_model(p) for p in scores])
        return z[: len(X)]
