"""What each party can see: no secret key at the server, blinded scores, D^2 up to a secret scale."""

import numpy as np
import pytest
from scipy import stats

from benchmarks.attacks.he import key_holder_spearman
from methods.he import KMeansProtocol, Pool, resolve_params
from methods.he.crypto import load_context
from methods.he.kmeans_keyholder import decrypt_complex, seen_centers, seen_scores
from methods.he.kmeans_protocol import d2_sample
from methods.he.kmeans_server import ServerShard
from methods.he.transport import Channel


def test_server_holds_no_secret_key_and_cannot_decrypt(ckks_fit):
    model, _ = ckks_fit
    ctx = load_context(model.public_context_)
    assert not ctx.is_private() and not ctx.has_secret_key()
    assert not ctx.has_galois_keys() and not ctx.has_relin_keys()
    server = load_context(model.server_context_)  # the owner's context plus relinearisation keys
    assert not server.is_private() and not server.has_secret_key() and not server.has_galois_keys()
    shard = ServerShard(model.params_.to_dict(), model.server_context_, 10, 0)
    with pytest.raises(ValueError, match="secret"):
        shard.codec.load(model.encrypted_assignments_[0][0]).decrypt()
    with pytest.raises(ValueError, match="public context"):
        ServerShard(model.params_.to_dict(), model.keyholder_.secret_context(), 10, 0)


def test_only_bytes_cross_the_channel(ckks_fit):
    model, _ = ckks_fit
    transcript = model.channel_.transcript
    assert transcript and all(isinstance(b, bytes) for *_, payload in transcript for b in payload)
    with pytest.raises(TypeError, match="only bytes"):
        Channel().send("server", "keyholder", [np.zeros(3)])
    # every message counted: channel totals equal the transcript's bytes
    assert model.channel_.total == sum(len(b) for *_, p in transcript for b in p)


def test_channel_merges_worker_shares_of_one_message():
    a, b = Channel(keep_transcript=True), Channel(keep_transcript=True)
    for ch, blobs in ((a, [b"xx", b"yyy"]), (b, [b"zzzz"])):
        ch.stage = "lloyd"
        ch.request("keyholder", "server", blobs, "one-hot assignments")
    total = Channel(keep_transcript=True)
    total.merge([a.snapshot(), b.snapshot()])
    assert total.bytes[("keyholder", "server")] == 9 and total.blobs == 3
    assert total.messages[("keyholder", "server")] == 1 and total.rounds == 1  # one message, one round
    assert total.stages["lloyd"] == {"bytes": 9, "messages": 1, "rounds": 1}
    assert total.transcript == [("keyholder", "server", "one-hot assignments", [b"xx", b"yyy", b"zzzz"])]


def test_key_holder_decrypts_totals_never_worker_partials(seg_X):
    """With two workers each holding a chunk, the key holder still receives one masked total per
    cluster sum and count (k*d + k per iteration), whose slot sums are the whole data's."""
    from methods.he import HEKMeans

    X = np.vstack([seg_X, seg_X, seg_X[:1000]])  # 4,200 rows: two chunks, one per worker
    assert len(X) == 4200
    init = X[:3].copy()
    model = HEKMeans(3, init=init, max_iter=1, tol=0.0, random_state=0, workers=2,
                     keep_transcript=True).fit(X)
    k, d = 3, X.shape[1]
    M = (k + 1) // 2  # two clusters per ciphertext (real and imaginary parts)
    msgs = [p for _, _, tag, p in model.channel_.transcript if tag == "masked sums"]
    assert len(msgs) == 1 and len(msgs[0]) == M * (d + 1)
    onehots = next(p for _, _, tag, p in model.channel_.transcript if tag == "one-hot assignments")
    assert len(onehots) == 2 * M  # ceil(k/2) packed one-hots per chunk
    codec = model.keyholder_.codec
    slots = [decrypt_complex(codec, b) for b in msgs[0]]
    vals = [(z.real.sum(), z.imag.sum()) for z in slots]
    sums = np.array([vals[(j // 2) * d + f][j % 2] for j in range(k) for f in range(d)])
    labels = ((X[:, None, :] - init[None]) ** 2).sum(-1).argmin(1)
    counts = np.bincount(labels, minlength=k)
    rho = np.array([vals[M * d + j // 2][j % 2] for j in range(k)]) / counts  # secret factors in [1, 16]
    assert np.all((rho >= 1) & (rho <= 16))
    true = np.array([X[labels == j].sum(0) for j in range(k)]).ravel()
    np.testing.assert_allclose(sums / np.repeat(rho, d), true, rtol=1e-6, atol=1e-4)
    # every slot is masked, in both parts: no slot shows a record's value
    assert min(min(np.abs(z.real[: len(X)]).min(), np.abs(z.imag[: len(X)]).min()) for z in slots) > 1.0


def _decrypted_rounds(model, X):
    """(true squared distances, what the key holder decrypted) for each Lloyd E-step."""
    codec, k, d = model.keyholder_.codec, model.n_clusters, X.shape[1]
    out, centers = [], None
    for _, _, tag, payload in model.channel_.transcript:
        if tag == "centroids":
            centers = seen_centers(codec, payload, k, d, packed=True)
        elif tag == "blinded scores":  # position 0's r s_0 + o and the differences r (s_l - s_0)
            seen = seen_scores(codec, payload, k, packed=True, n=len(X))
            out.append((((X[:, None, :] - centers[None]) ** 2).sum(-1), seen))
    return out


def test_key_holder_scores_are_blinded(ckks_fit, seg_X):
    model, _ = ckks_fit
    rounds = _decrypted_rounds(model, seg_X)
    assert len(rounds) == model.n_iter_ + 1
    worst = 0.0
    for true, seen in rounds:
        assert np.array_equal(seen.argmin(1), true.argmin(1))  # argmin kept
        for j in range(model.n_clusters):
            worst = max(worst, abs(stats.spearmanr(true[:, j], seen[:, j]).statistic))
    assert worst <= 0.1, f"Spearman correlation {worst:.3f} between decrypted and true distances"
    # the measure the leakage audit records (benchmarks.attacks.he, HEMethod(audit_transcript=True))
    assert key_holder_spearman(model, seg_X) == pytest.approx(worst)


@pytest.fixture(scope="module")
def seeding_run():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3)) * np.array([1.0, 3.0, 0.5])
    proto = KMeansProtocol(resolve_params("ckks"), 3, seed=11, keep_transcript=True)
    with Pool(1) as pool:
        proto.setup(X, pool)
        centers = proto.seed("kmeans++", 3)
    return X, proto, centers


def test_seeding_reveals_d2_only_up_to_a_secret_scale(seeding_run):
    X, proto, centers = seeding_run
    codec = proto.keyholder.codec
    msgs = [p for _, _, tag, p in proto.channel.transcript if tag == "blinded D2"]
    assert len(msgs) == 3  # distances to the first center, then to each step's candidates
    z = decrypt_complex(codec, msgs[0][0])[: len(X)]  # the first center alone: real part only
    seen = z.real
    assert np.abs(z.imag).max() < 1e-3  # (no distance to a center at the origin)
    true = ((X - centers[0]) ** 2).sum(1)
    ratio = seen[true > 1e-3] / true[true > 1e-3]
    # one hidden factor (to the precision of the packed form ||c||^2 - 2 x.c + ||x||^2 at 2^31)
    assert np.ptp(ratio) < 1e-5 * ratio.mean() and abs(ratio.mean() - 1.0) > 1e-3
    # exactly D^2-proportional: the key holder's probabilities are plaintext D^2 probabilities
    np.testing.assert_allclose(np.clip(seen, 0, None) / np.clip(seen, 0, None).sum(), true / true.sum(),
                               atol=1e-8)


def test_d2_sampling_frequencies_match_plaintext_probabilities(seeding_run):
    X, proto, centers = seeding_run
    codec = proto.keyholder.codec
    msg = next(p for _, _, tag, p in proto.channel.transcript if tag == "blinded D2")
    seen = codec.decrypt(msg[0])[: len(X)]
    p = ((X - centers[0]) ** 2).sum(1)
    p = p / p.sum()
    rng = np.random.default_rng(0)
    draws = 20000
    counts = np.bincount([d2_sample(seen, rng) for _ in range(draws)], minlength=len(X))
    expected = p * draws
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    assert stats.chisquare(obs, exp).pvalue > 1e-3
    assert counts[np.argmin(p)] == 0  # the current center itself is never drawn again


def test_leakage_audit_measures_the_kept_transcript_then_frees_it(ckks_fit, seg_X):
    from types import SimpleNamespace

    from benchmarks.attacks.he import method_key_holder_spearman

    model, _ = ckks_fit
    copy = SimpleNamespace(channel_=SimpleNamespace(transcript=list(model.channel_.transcript)),
                           keyholder_=model.keyholder_, n_clusters=model.n_clusters)
    method = SimpleNamespace(kmeans_=copy)
    assert method_key_holder_spearman(method, seg_X) == pytest.approx(key_holder_spearman(model, seg_X))
    assert copy.channel_.transcript == []
    assert method_key_holder_spearman(method, seg_X) is None  # nothing kept, nothing measured


def test_server_modules_can_neither_make_nor_read_a_secret_key():
    # each party's file shows what it may touch: the servers' modules hold no key-making code
    import methods.he.kmeans_owner as owner
    import methods.he.kmeans_server as kmeans_server
    import methods.he.logreg_server as logreg_server

    for mod in (kmeans_server, logreg_server, owner):
        held = set(vars(mod))
        assert not held & {"make_context", "secret_key_encryptor", "KeyHolder", "KeyHolderShard",
                           "LRKeyHolder"}, mod.__name__
