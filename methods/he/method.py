"""``method=he``: K-means on ciphertexts, then the subscription predictor.

``predictor="encrypted"`` (default) keeps the whole pipeline encrypted: the server clusters the
owner's encrypted segment features, the K-means key holder serves the final one-hot assignments as
fresh encryptions under the logistic regression's public context, and the server trains
:class:`~methods.he.logreg.HELogisticRegression` on the owner's encrypted (standardised) model
features, encrypted labels and those one-hots. The owner decrypts the final model and scores.
``predictor="owner"`` trains scikit-learn's logistic regression on the owner's records and the
decrypted segments instead.
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from methods import ConfigError
from methods._estimator import MethodMixin
from methods.base import Costs, PartyCost, Privacy, with_segments
from methods.he import remote
from methods.he.crypto import HEParams, logreg_params
from methods.he.kmeans import HEKMeans
from methods.he.logreg import HELogisticRegression, LRKeyHolder
from methods.kmeans_core import nearest_center, reference_init

PREDICTORS = ("encrypted", "owner")

#: pipeline stage <- (stage of the K-means channel / phase) and (stage of the logistic regression's channel)
_KMEANS_STAGES = {"keys": "keys", "encrypt": "encryption", "seeding": "seeding", "lloyd": "clustering",
                  "final_assignment": "assignments"}
_LR_STAGES = {"upload": "lr_encryption", "setup": "lr_setup", "training": "lr_training"}
_LR_PHASES = {"he_load": "lr_encryption", "he_setup": "lr_setup", "he_setup_keyholder": "lr_setup",
              "he_scores": "lr_training", "he_refresh": "lr_training", "he_gradient": "lr_training",
              "he_update": "lr_training", "he_finish": "lr_training", "owner_decrypt": "lr_training"}
STAGES = ("keys", "encryption", "seeding", "clustering", "assignments", "lr_keys", "lr_encryption",
          "lr_setup", "lr_training", "scoring")


class HEMethod(MethodMixin, BaseEstimator):
    """HE K-means on the segment features (:class:`HEKMeans`), then the predictor. A binary
    scikit-learn classifier (:class:`methods._estimator.MethodMixin`).

    Parameters are those of :class:`HEKMeans` (``init`` also accepts ``"k-means++"``: the plaintext
    reference's initial centers, for exact comparisons) plus:

    predictor : {"encrypted", "owner"}
        ``encrypted``: :class:`HELogisticRegression` trained by the server on ciphertexts (all
        model features standardised and clipped at ``lr_clip`` by the owner, labels, and the raw
        0/1 segment one-hots served by the K-means key holder); ``owner``: scikit-learn's logistic
        regression trained by the owner on its records and the decrypted segments.
    C, class_weight, lr_max_iter :
        The owner predictor's scikit-learn parameters.
    lr_n_iter, lr_learning_rate, lr_l2, lr_interval, lr_class_weight, lr_clip :
        The encrypted predictor's ``n_iter``, ``learning_rate``, ``l2``, ``interval``,
        ``class_weight`` (from the label counts the owner knows) and ``clip``.
    segments_in_predictor : bool
        False: either predictor sees the model features only; the K-means stage then serves no
        one-hots under the logistic regression's context. With ``n_clusters=1`` the one-hot is a
        constant column and is left out either way (the intercept carries it).
    audit_transcript : bool
        Keep the K-means transcript (``kmeans_.channel_.transcript``) for the leakage audit's
        key-holder check (``benchmarks.attacks.he.key_holder_spearman``), which frees it.
    lr_poly_modulus_degree, lr_coeff_mod_bit_sizes, lr_scale_bits :
        Its CKKS parameters (null: the 128-bit defaults, :data:`methods.he.crypto.LOGREG_DEFAULT`);
        ``allow_insecure`` applies to both stages.
    transport, server, keyholder, tls, tls_cert, token_file, network :
        Where the parties run (:class:`HEKMeans`; :mod:`methods.he.remote`): both stages share one
        session, so services started for the run serve K-means and the logistic regression.
    backend, ray_address :
        Where the K-means workers run (:class:`HEKMeans`): this machine's pool or Ray actors.
    """

    name: ClassVar[str] = "he"
    fit_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_clusters=4, random_state=0, scheme="ckks", init="kmeans++", max_iter=300,
                 tol=1e-4, permute=False, workers=1, poly_modulus_degree=None, coeff_mod_bit_sizes=None,
                 scale_bits=None, frac_bits=None, allow_insecure=False, parallel_rounds=5, oversampling=None,
                 local_trials=None, predictor="encrypted", C=1.0, class_weight=None, lr_max_iter=1000,
                 lr_n_iter=10, lr_learning_rate=2.0, lr_l2=1e-3, lr_interval=16.0, lr_class_weight="balanced",
                 lr_clip=4.0, lr_poly_modulus_degree=None, lr_coeff_mod_bit_sizes=None, lr_scale_bits=None,
                 audit_transcript=False, transport="local", server=None, keyholder=None, tls=False,
                 tls_cert=None, token_file=None, network=None,
                 segments_in_predictor=True, backend="local", ray_address=None):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.scheme = scheme
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.permute = permute
        self.workers = workers
        self.poly_modulus_degree = poly_modulus_degree
        self.coeff_mod_bit_sizes = coeff_mod_bit_sizes
        self.scale_bits = scale_bits
        self.frac_bits = frac_bits
        self.allow_insecure = allow_insecure
        self.parallel_rounds = parallel_rounds
        self.oversampling = oversampling
        self.local_trials = local_trials
        self.predictor = predictor
        self.C = C
        self.class_weight = class_weight
        self.lr_max_iter = lr_max_iter
        self.lr_n_iter = lr_n_iter
        self.lr_learning_rate = lr_learning_rate
        self.lr_l2 = lr_l2
        self.lr_interval = lr_interval
        self.lr_class_weight = lr_class_weight
        self.lr_clip = lr_clip
        self.lr_poly_modulus_degree = lr_poly_modulus_degree
        self.lr_coeff_mod_bit_sizes = lr_coeff_mod_bit_sizes
        self.lr_scale_bits = lr_scale_bits
        self.audit_transcript = audit_transcript
        self.transport = transport
        self.server = server
        self.keyholder = keyholder
        self.tls = tls
        self.tls_cert = tls_cert
        self.token_file = token_file
        self.network = network
        self.segments_in_predictor = segments_in_predictor
        self.backend = backend
        self.ray_address = ray_address

    @property
    def dataset_overrides(self) -> dict:
        # BFV needs every value inside the public bounds (its integers wrap silently)
        return {"clip": True} if self.scheme == "bfv" else {}

    # ------------------------------------------------------------------ fit
    def _lr(self) -> tuple[HELogisticRegression, HEParams]:
        d = logreg_params()
        est = HELogisticRegression(
            n_iter=self.lr_n_iter, learning_rate=self.lr_learning_rate, l2=self.lr_l2,
            interval=self.lr_interval, class_weight=self.lr_class_weight, clip=self.lr_clip,
            poly_modulus_degree=self.lr_poly_modulus_degree or d.poly_modulus_degree,
            coeff_mod_bit_sizes=tuple(self.lr_coeff_mod_bit_sizes or d.coeff_mod_bit_sizes),
            scale_bits=self.lr_scale_bits or d.scale_bits, allow_insecure=bool(self.allow_insecure),
            random_state=self.random_state)
        # validates the parameters before any encryption starts
        try:
            return est, est._check_params()
        except ValueError as e:  # name the method's parameter (n_iter=0 -> lr_n_iter=0)
            raise type(e)(f"lr_{e} (the encrypted predictor's parameters are lr_*)") from e

    def _kmeans(self, init, assignment_context=None, chunk_size=None) -> HEKMeans:
        return HEKMeans(
            n_clusters=self.n_clusters, init=init, scheme=self.scheme, max_iter=self.max_iter, tol=self.tol,
            permute=self.permute, workers=self.workers, random_state=self.random_state,
            poly_modulus_degree=self.poly_modulus_degree,
            coeff_mod_bit_sizes=list(self.coeff_mod_bit_sizes) if self.coeff_mod_bit_sizes else None,
            scale_bits=self.scale_bits, frac_bits=self.frac_bits, allow_insecure=self.allow_insecure,
            parallel_rounds=self.parallel_rounds, oversampling=self.oversampling,
            local_trials=self.local_trials, assignment_context=assignment_context,
            assignment_chunk_size=chunk_size, keep_transcript=self.audit_transcript,
            transport=self.transport, server=self.server, keyholder=self.keyholder, tls=self.tls,
            tls_cert=self.tls_cert, token_file=self.token_file, network=self.network,
            backend=self.backend, ray_address=self.ray_address)

    def _init(self, X_segment):
        """The K-means initial centers, or the name of the seeding to run on ciphertexts."""
        if isinstance(self.init, str) and self.init == "k-means++":
            return reference_init(X_segment, self.n_clusters, self.random_state)
        return self.init

    def _check_predictor(self) -> None:
        if self.predictor not in PREDICTORS:
            raise ValueError(f"predictor={self.predictor!r}; expected one of {list(PREDICTORS)}")

    def check_params(self) -> None:
        """The parameter checks that need no data (run by the config layer before any run dir), by
        the functions ``fit`` runs; a bad value is a :class:`~methods.ConfigError` naming
        ``method.<parameter>``."""
        try:
            self._check_predictor()
            # "k-means++" (the plaintext reference's centers) is computed on the data; it is valid
            init = "kmeans++" if isinstance(self.init, str) and self.init == "k-means++" else self.init
            self._kmeans(init)._check_params()
            if self.predictor == "encrypted":
                self._lr()
        except ValueError as exc:
            raise ConfigError(f"method.{exc}") from exc

    def fit(self, X, y, X_segment=None):
        X, y, X_segment = self._fit_arrays(X, y, X_segment)
        self._check_predictor()
        with remote.Session(self.transport, self.server, self.keyholder, self.tls, self.tls_cert,
                            self.token_file, self.network, int(self.workers)) as session:
            if self.predictor == "owner":
                self._fit_owner(X, y, X_segment)
            else:
                self._fit_encrypted(X, y, X_segment)
        if session.remote:  # start-up of the services, outside every stage; what crossed each link
            self.costs_.phases["startup"] = session.startup_s
            self.costs_.extra["startup_s"] = session.startup_s
            self.costs_.extra["wire"] = session.wire()
        return self

    def _fit_owner(self, X, y, X_segment):
        self.kmeans_ = self._kmeans(self._init(X_segment)).fit(X_segment)
        self.costs_ = self.kmeans_.costs_
        self.costs_.phases["segmentation"] = self.kmeans_.wall_s_
        self._segments_from_kmeans()
        with self.costs_.phase("prediction", party="owner"):
            self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight,
                                             max_iter=self.lr_max_iter)
            self.model_.fit(with_segments(X, self.labels_, self.n_clusters, self._segment_columns), y)
        self.privacy_ = Privacy(
            threat_model="honest-but-curious compute server (public key only) and key holder (secret key, "
                         "sees blinded values only); the key holder is the data owner by default",
            revealed=self.kmeans_.revealed(),
            extra={"he_params": self.kmeans_.params_.to_dict(), "predictor": "owner (plaintext logistic "
                   "regression on the owner's records and decrypted segments)"},
        )
        return self

    @property
    def _segment_columns(self) -> bool:
        """Whether the predictor sees the segment one-hot: with one segment it is a constant
        column, which the intercept already is, so it is left out."""
        return bool(self.segments_in_predictor) and int(self.n_clusters) > 1

    def _segments_from_kmeans(self) -> None:
        self.cluster_centers_ = self.kmeans_.cluster_centers_
        self.labels_ = self.kmeans_.labels_
        self.n_iter_ = self.kmeans_.n_iter_

    def _fit_encrypted(self, X, y, X_segment):
        lr, params = self._lr()
        walls: dict[str, float] = {}
        lr_owner_cpu = 0.0
        # the owner (LR key holder) makes the LR keys first: the K-means key holder must serve the
        # final assignments under its public context
        t, c = time.perf_counter(), time.process_time()
        kh = LRKeyHolder(params)
        public = kh.public_context()
        walls["lr_keys"] = time.perf_counter() - t
        lr_owner_cpu += time.process_time() - c

        if self._segment_columns:
            self.kmeans_ = self._kmeans(self._init(X_segment), assignment_context=public,
                                        chunk_size=params.slots)
        else:
            self.kmeans_ = self._kmeans(self._init(X_segment))
        self.kmeans_.fit(X_segment)
        self._segments_from_kmeans()

        t, c = time.perf_counter(), time.process_time()
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        Z = self._standardise(X)
        columns = [kh.encrypt_column(Z[:, j], kh.column_level) for j in range(Z.shape[1])]
        labels = kh.encrypt_column(y)
        walls["lr_encryption"] = time.perf_counter() - t
        lr_owner_cpu += time.process_time() - c
        # the segment columns are the K-means stage's served ciphertexts, as they are
        served = self.kmeans_.encrypted_assignments_
        segments = [[chunk[j] for chunk in served] for j in range(self.n_clusters)] \
            if self._segment_columns else []
        counts = (int((y == 0).sum()), int((y == 1).sum()))
        lr.fit_encrypted(kh, columns, labels, len(y), counts, extra_columns=segments)
        self.model_ = lr
        self.costs_ = self._pipeline_costs(lr, walls, lr_owner_cpu, len(public))
        self.privacy_ = Privacy(
            threat_model="honest-but-curious compute server (public contexts only, of both stages) and key "
                         "holders (secret keys, see blinded or masked values only); K-means key holder and "
                         "logistic-regression key holder are the data owner by default",
            revealed=self._revealed(lr),
            extra={"he_params": self.kmeans_.params_.to_dict(),
                   "predictor": "encrypted (logistic regression trained by the server on ciphertexts; the "
                                "owner decrypts the final model and scores)",
                   "class_weight_source": "label counts the owner knows (n_neg, n_pos), sent to the server "
                                          "as the class weights"},
        )
        return self

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        Z = (np.asarray(X, float) - self.mean_) / self.scale_
        return Z if self.lr_clip is None else np.clip(Z, -self.lr_clip, self.lr_clip)

    def _pipeline_costs(self, lr: HELogisticRegression, walls: dict, lr_owner_cpu: float,
                        ctx_bytes: int) -> Costs:
        km, lc = self.kmeans_.costs_, lr.costs_
        costs = Costs()
        stages = {s: {"wall_s": 0.0, "bytes": 0, "rounds": 0} for s in STAGES}
        for phase, s in _KMEANS_STAGES.items():
            stages[s]["wall_s"] += km.phases.get(phase, 0.0)
        for phase, secs in lc.phases.items():
            stages[_LR_PHASES.get(phase, "lr_training")]["wall_s"] += secs
        for s, secs in walls.items():
            stages[s]["wall_s"] += secs
        for src, mapping in ((km.extra["channel_stages"], _KMEANS_STAGES),
                             (lc.extra["channel_stages"], _LR_STAGES)):
            for st, counts in src.items():
                target = mapping.get(st, st)
                stages.setdefault(target, {"wall_s": 0.0, "bytes": 0, "rounds": 0})
                stages[target]["bytes"] += counts["bytes"]
                stages[target]["rounds"] += counts["rounds"]
        # the LR channel's upload opens with the public context (owner -> server): that is key
        # traffic; its copy server -> K-means key holder is in the K-means channel ("assignments")
        stages["lr_keys"]["bytes"] += ctx_bytes
        stages["lr_encryption"]["bytes"] -= ctx_bytes
        costs.extra["lr_public_context_bytes"] = ctx_bytes
        costs.phases = {s: v["wall_s"] for s, v in stages.items()}
        for src in (km, lc):  # both channels were charged into their own costs
            for party, pc in src.parties.items():
                acc = costs.parties.setdefault(party, PartyCost())
                acc.cpu_s += pc.cpu_s
                acc.bytes_sent += pc.bytes_sent
                acc.bytes_received += pc.bytes_received
        costs.party("owner").cpu_s += lr_owner_cpu
        costs.rounds = km.rounds + lc.rounds
        costs.extra.update({k: v for k, v in km.extra.items() if k != "channel_stages"})
        costs.extra["stages"] = stages
        costs.extra["kmeans_phases"] = dict(km.phases)
        costs.extra["lr_phases"] = dict(lc.phases)
        costs.extra["he_logreg"] = lc.extra["he_logreg"]
        costs.extra["lr_ops"] = lc.extra["he_ops"]
        costs.extra["lr_keyholder_ops"] = lc.extra["keyholder_ops"]
        return costs

    def _revealed(self, lr: HELogisticRegression) -> dict[str, str]:
        km = self.kmeans_.revealed()
        lrr = lr.privacy_.revealed
        return {
            "server": "K-means stage: " + km["server"] + ". Logistic-regression stage: " + lrr["server"]
                      + "; the segment one-hots arrive as fresh encryptions under the LR public context "
                        "(the server cannot link them to the K-means ciphertexts by content); the LR public "
                        "context holds public and relinearisation keys only",
            "keyholder": "K-means key holder: " + km["keyholder"] + "; it also receives the LR public "
                         "context (no secret key) to encrypt the final one-hots under. Logistic-regression "
                         "key holder (the owner): " + lrr["keyholder"],
            "owner": "its own records and labels, the centroids, the final segment labels and the final "
                     "model weights",
        }

    # ------------------------------------------------------------------ use
    def segment(self, X_segment):
        return nearest_center(np.asarray(X_segment, dtype=float), self.cluster_centers_)

    def model_features(self, X, X_segment) -> np.ndarray:
        """The columns the predictor was trained on, for the owner's scoring: for the encrypted
        predictor the standardised, clipped features plus the raw 0/1 segment one-hot."""
        X = np.asarray(X, dtype=float)
        if self.predictor == "owner":
            return with_segments(X, self.segment(X_segment), self.n_clusters, self._segment_columns)
        return with_segments(self._standardise(X), self.segment(X_segment), self.n_clusters,
                             self._segment_columns)

    def _proba(self, X, X_segment):
        return self.model_.predict_proba(self.model_features(X, X_segment))[:, 1]

    def record_scoring(self, wall_s: float, rows: int) -> None:
        """Charge the owner's scoring of the test split (timed by the runner) to the encrypted
        pipeline's ``scoring`` stage; other scorings (e.g. the leakage attacks) are not charged.
        The owner predictor has no such stage."""
        if self.predictor != "encrypted":
            return
        self.costs_.phases["scoring"] = wall_s
        self.costs_.extra["stages"]["scoring"]["wall_s"] = wall_s
        self.costs_.extra["scoring_rows"] = int(rows)
