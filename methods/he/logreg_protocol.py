"""The logistic-regression protocol driver: the rounds between the server and the key holder.

Setup (one round each way): the server sends the masked record weights ``u`` for a refresh and
the masked constant gradient term; the key holder answers with fresh ``u`` and ``Enc(v_0)``. Each
iteration, two rounds: masked scores ``z`` -> fresh ``z``; masked gradient vectors -> fresh masked
weights. Last, the key holder sends the fresh masked final weights, which the server unmasks. The
parties' code is in :mod:`methods.he.logreg_keyholder` and :mod:`methods.he.logreg_server`; this
driver only routes their bytes through a :class:`~methods.he.transport.Channel` and charges the
phases. See docs/he_logreg.md.
"""

from __future__ import annotations

import contextlib

import numpy as np

from methods.he.logreg_keyholder import LRKeyHolder
from methods.he.logreg_math import SigmoidPoly
from methods.he.logreg_server import LRServer
from methods.he.transport import Channel
from methods.progress import Progress


def iteration_bytes_floor(n: int, d: int, params, z_bound_bits: float = 21.0,
                          gradient_bound_bits: float = 13.0) -> dict:
    """The floor of one training iteration's bytes (docs/he_logreg.md, "Bytes and the floor"): per
    record, the masked score (2 components, at the bits its bound and the scale need, plus a sign
    bit) and its fresh encryption (seeded, on the data primes the gradient step consumes); per
    iteration, d masked gradient vectors (2 components, their bound plus the scale plus a sign bit)
    and d fresh weights (seeded, one prime below the top, where the scores use them)."""
    N, S, scale = params.poly_modulus_degree, params.slots, params.scale_bits
    data = sum(params.coeff_mod_bit_sizes[:-1])
    z_bits, zf_bits = z_bound_bits + scale + 1, data
    g_bits, w_bits = gradient_bound_bits + scale + 1, data - params.coeff_mod_bit_sizes[-2]
    per_record = (2 * N * z_bits + N * zf_bits) / 8 / S
    broadcast = d * (2 * N * g_bits + N * w_bits) / 8
    return {"per_record_per_iteration": per_record, "broadcast_per_iteration": broadcast,
            "per_iteration": per_record * n + broadcast}


def run_protocol(server: LRServer, key_holder: LRKeyHolder, channel: Channel, *, poly: SigmoidPoly,
                 w_neg: float, w_pos: float, total_weight: float, l2: float, penalised: np.ndarray,
                 eta: np.ndarray, gamma: np.ndarray, kh: str = "owner", costs=None) -> list[bytes]:
    """Train on the server's loaded ciphertexts; returns the encrypted final weights (bytes).

    ``kh`` names the key holder's party in the channel (by default the owner plays that role).
    """
    def phase(name, party):
        return costs.phase(name, party) if costs is not None else contextlib.nullcontext()

    step = dict(total_weight=total_weight, l2=l2, penalised=penalised, eta=eta, gamma=gamma)
    channel.stage = "setup"
    with phase("he_setup", "server"):
        u_masked, const_masked = server.prepare(poly, w_neg, w_pos)
    channel.request("server", kh, u_masked, tag="u_masked")
    channel.send("server", kh, const_masked, tag="constant_gradient_masked")
    with phase("he_setup_keyholder", kh):
        u_fresh = key_holder.refresh(u_masked)
        v0 = key_holder.start(const_masked, **step)
    channel.send(kh, "server", u_fresh, tag="u_fresh")
    channel.send(kh, "server", v0, tag="v_fresh")
    with phase("he_setup", "server"):
        server.receive_weights_u(u_fresh)
        server.start(v0, step)
    channel.stage = "training"
    bar = Progress("HE logistic regression: iteration", total=len(eta), unit="iter")
    for _ in range(len(eta)):
        with phase("he_scores", "server"):
            z_masked = server.scores()
        channel.request("server", kh, z_masked, tag="z_masked")
        with phase("he_refresh", kh):
            z_fresh = key_holder.refresh(z_masked)
        channel.send(kh, "server", z_fresh, tag="z_fresh")
        with phase("he_gradient", "server"):
            g_masked = server.gradients(z_fresh)
        channel.request("server", kh, g_masked, tag="gradient_masked")
        with phase("he_update", kh):
            v_fresh = key_holder.update(g_masked)
        channel.send(kh, "server", v_fresh, tag="v_fresh")
        with phase("he_gradient", "server"):
            server.receive_update(v_fresh)
        bar.step()
    bar.close()
    channel.request("server", kh, [b"final"], tag="finish")
    with phase("he_finish", kh):
        w_masked = key_holder.final()
    channel.send(kh, "server", w_masked, tag="w_fresh")
    with phase("he_finish", "server"):
        return server.finish(w_masked)
