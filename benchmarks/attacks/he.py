"""What the HE compute server holds: ciphertext only.

The check: encrypt vectors whose every slot is one secret bit (all zeros or all ones) under CKKS,
and let a classifier (standardised logistic regression, cross-validated) try to predict the bit
from the serialized ciphertext bytes (length, byte histogram, the leading bytes). On ciphertexts
it must stay at chance (AUC interval covering 0.5); the same classifier on the serialized
*plaintext* tensors (what the server would hold without encryption) is the positive control.

The key holder's view is a separate check on the HE K-means transcript (:func:`key_holder_spearman`):
the Spearman correlation between what it decrypts and the true distances. The leakage hook measures
it (:func:`method_key_holder_spearman`) when the method exposes its K-means model with the
transcript kept (``method=he`` with ``audit_transcript=true``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.attacks._metrics import auc_ci

#: small CKKS test parameters (128-bit secure: log q = 100 <= 109 for N = 4096)
SMALL_CKKS = {"poly_modulus_degree": 4096, "coeff_mod_bit_sizes": (40, 20, 40), "global_scale_bits": 20}


def secret_bits(n: int, seed: int) -> np.ndarray:
    """A balanced, shuffled vector of ``n`` secret bits."""
    bits = np.arange(n) % 2
    return np.random.default_rng(seed).permutation(bits)


def ckks_ciphertexts(bits: Sequence[int], n_slots: int = 16, poly_modulus_degree: int = 4096,
                     coeff_mod_bit_sizes: Sequence[int] = (40, 20, 40),
                     global_scale_bits: int = 20) -> list[bytes]:
    """Serialized CKKS encryptions (public-key, as a data owner produces them) of vectors whose
    every slot equals the bit. TenSEAL draws encryption randomness from the OS; it is not seeded."""
    from methods.he.crypto import Codec, HEParams, check_security, load_context, make_context, public_bytes

    check_security(poly_modulus_degree, coeff_mod_bit_sizes)
    params = HEParams(scheme="ckks", poly_modulus_degree=int(poly_modulus_degree),
                      coeff_mod_bit_sizes=tuple(int(b) for b in coeff_mod_bit_sizes),
                      scale_bits=int(global_scale_bits))
    owner = Codec(load_context(public_bytes(make_context(params))), params)  # the public context only
    return [owner.encrypt_bytes([float(b)] * n_slots) for b in bits]


def plaintext_tensors(bits: Sequence[int], n_slots: int = 16) -> list[bytes]:
    """The same vectors serialized unencrypted (the positive control)."""
    import tenseal as ts

    return [ts.plain_tensor([float(b)] * n_slots).serialize() for b in bits]


def byte_features(blobs: Sequence[bytes], n_leading: int = 1024) -> np.ndarray:
    """Length, byte-value histogram (frequencies) and the first ``n_leading`` bytes of each blob."""
    out = np.zeros((len(blobs), 1 + 256 + n_leading))
    for i, blob in enumerate(blobs):
        a = np.frombuffer(blob, dtype=np.uint8)
        out[i, 0] = len(a)
        out[i, 1:257] = np.bincount(a, minlength=256) / max(len(a), 1)
        lead = a[:n_leading]
        out[i, 257:257 + len(lead)] = lead / 255.0
    return out


def distinguisher_auc(blobs: Sequence[bytes], bits: Sequence[int], seed: int = 0, folds: int = 5,
                      alpha: float = 0.05, n_leading: int = 1024) -> dict:
    """Out-of-fold ROC-AUC of a logistic regression predicting the bit from the bytes."""
    bits = np.asarray(bits)
    X = byte_features(blobs, n_leading)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, X, bits, cv=cv, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(bits, proba))
    n1 = int(bits.sum())
    return {"auc": auc, "auc_ci": list(auc_ci(auc, n1, len(bits) - n1, alpha)), "n": len(bits)}


def ciphertext_leakage(n: int = 200, seed: int = 0, alpha: float = 0.05, control: bool = True,
                       **params) -> dict:
    """The HE server check: distinguisher AUC on ciphertexts (and on plaintexts as a control)."""
    bits = secret_bits(n, seed)
    p = {**SMALL_CKKS, **params}
    res = distinguisher_auc(ckks_ciphertexts(bits, **p), bits, seed=seed, alpha=alpha)
    out = {"he_ciphertext_auc": res["auc"], "he_ciphertext_auc_ci": res["auc_ci"],
           "he_ciphertext_n": res["n"], "he_ciphertext_params": {k: list(v) if isinstance(v, tuple) else v
                                                                  for k, v in p.items()}}
    if control:
        out["he_plaintext_control_auc"] = distinguisher_auc(plaintext_tensors(bits), bits, seed=seed,
                                                            alpha=alpha)["auc"]
    return out


def key_holder_spearman(model, X: np.ndarray) -> float:
    """The key holder's transcript check: the largest |Spearman rho|, over Lloyd assignment rounds and
    clusters, between the scores it decrypted and the true squared distances of the records to the
    centroids of that round. Blinding keeps it near 0; ``model`` is an :class:`~methods.he.HEKMeans`
    fitted with ``keep_transcript``."""
    from scipy import stats

    from methods.he.kmeans_keyholder import seen_centers, seen_scores

    if not model.channel_.transcript:
        raise ValueError("key_holder_spearman needs a model fitted with keep_transcript=True")
    codec, k, d = model.keyholder_.codec, model.n_clusters, X.shape[1]
    packed = codec.ckks and not getattr(model, "permute", False)  # two clusters per ciphertext
    worst, centers = 0.0, None
    for _, _, tag, payload in model.channel_.transcript:
        if tag == "centroids":
            centers = seen_centers(codec, payload, k, d, packed)
        elif tag == "blinded scores" and centers is not None:
            # the key holder rebuilds every r s + o from position 0's score and the differences
            seen = seen_scores(codec, payload, k, packed, len(X))
            true = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
            for j in range(k):
                rho = stats.spearmanr(true[:, j], seen[:, j]).statistic
                worst = max(worst, abs(float(rho)))
    return worst


def method_key_holder_spearman(method, X_segment: np.ndarray) -> float | None:
    """:func:`key_holder_spearman` of ``method.kmeans_`` on the segment features it was fitted on,
    if it kept its transcript (then the transcript is freed); None otherwise."""
    model = getattr(method, "kmeans_", None)
    channel = getattr(model, "channel_", None)
    if channel is None or not channel.transcript:
        return None
    rho = key_holder_spearman(model, np.asarray(X_segment, dtype=float))
    channel.transcript.clear()
    return rho
