"""HE K-means against scikit-learn on bank_full: wall time, op counts, op-count lower bound.

    python -m benchmarks.perf he_kmeans [--subsample N] [--k 4] [--workers 2] [--scheme ckks]
                                        [--init kmeans++] [--speedup] [--repeat R]
                                        [--transport grpc --network lan|wan|<profile>]
    python -m benchmarks.perf he_kmeans --accuracy 2,3,4,5,6,7,8 [--scheme ckks|bfv] [--max-iter M]
    python -m benchmarks.perf he_kmeans --rows 100000,300000,1000000 --workers 2 [--backend ray]

``--rows N`` runs on N rows (:func:`rows`: dataset=synthetic when it exists, else bank_full's
training split resampled with jitter) and reports the process tree's peak memory during the fit
(``tree_peak_rss_mb``: the sum of every process's resident set, shared pages counted in each;
``tree_peak_pss_mb``: shared pages split; sampled every 0.2 s, :mod:`benchmarks.perf._rss`). A
list of sizes runs each and fits the growth exponent of wall time (start-up excluded), CPU time,
Lloyd seconds per iteration and peak RSS in n (least squares on log-log).

The HE run is end to end (keys, encryption, seeding, Lloyd, final assignment). scikit-learn runs
from the HE run's initial centers for the same number of iterations. Per-op times are measured in
the same process right after the run; ``lower_bound_s`` = sum(op count x op time) / workers and
``efficiency`` = lower_bound_s / he_wall_s. ``--speedup`` also runs one worker and reports
``speedup`` = wall(1 worker) / wall(workers). ``--repeat R`` runs each configuration R times,
alternating them, and reports medians (the runs are listed in ``*_runs``); the op times and the
other figures come from the run with the median wall time.

``--accuracy`` runs, for each k, HE K-means from the plaintext reference's initial centers
(:func:`methods.plaintext.reference_init`) and compares with plaintext Lloyd run for the same number
of iterations: CKKS reports ARI and the largest centroid difference; BFV compares labels and
integer centroids with :func:`methods.he.quantized_lloyd` on the same quantised data (exact match).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from omegaconf import OmegaConf
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from benchmarks.perf import _network
from benchmarks.perf._rss import TreeRSS
from methods._util import CONF, cpu_seconds
from methods.base import peak_rss_mb


def _data(subsample, split_seed=0):
    import datasets

    cfg = OmegaConf.load(CONF / "dataset" / "bank_full.yaml")
    cfg.subsample = subsample
    return datasets.load(cfg, split_seed=split_seed).train.X_segment


#: jitter added to resampled rows, in units of each (standardised) feature's standard deviation
JITTER = 0.05


def rows(n: int, source: str = "auto", seed: int = 0, split_seed: int = 0) -> tuple[np.ndarray, str]:
    """``n`` rows of the segment features for a scaling run, and where they came from.

    ``synthetic``: the first ``n`` training rows of ``dataset=synthetic`` (conf/dataset/synthetic.yaml,
    ``n_rows`` set so that its training split holds ``n``); ``resample``: bank_full's training split
    drawn ``n`` times with replacement (seeded) plus Gaussian jitter of :data:`JITTER` standard
    deviations, so that no two rows coincide; ``auto``: synthetic when its config exists."""
    import datasets

    path = CONF / "dataset" / "synthetic.yaml"
    if source == "auto":
        source = "synthetic" if path.is_file() else "resample"
    if source == "synthetic":
        if not path.is_file():
            raise SystemExit(f"--source synthetic: no {path}; use --source resample")
        cfg = OmegaConf.load(path)
        cfg.n_rows = int(np.ceil(n / (1.0 - float(cfg.get("test_size", 0.2))))) + 1
        X = datasets.load(cfg, split_seed=split_seed).train.X_segment
        if len(X) < n:
            raise SystemExit(f"dataset=synthetic gave {len(X)} training rows; {n} asked")
        return np.ascontiguousarray(X[:n]), f"synthetic (n_rows={cfg.n_rows})"
    X = _data(None, split_seed)
    rng = np.random.default_rng(seed)
    out = X[rng.integers(len(X), size=n)]
    out += rng.normal(0.0, JITTER, out.shape) * X.std(0)
    return out, f"resample of bank_full's training split (seed {seed}, jitter {JITTER} sd)"


def _median_s(fn, repeat=9) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def op_times(params) -> dict[str, float]:
    """Seconds per protocol operation at these parameters (median of repeats)."""
    from methods.he.crypto import Codec, load_context, make_context, public_bytes

    ctx = make_context(params)
    kh = Codec(ctx, params)
    srv = Codec(load_context(public_bytes(ctx)), params)
    rng = np.random.default_rng(0)
    S = params.slots
    ckks = params.scheme == "ckks"
    vals = rng.normal(size=S) if ckks else rng.integers(-100, 100, S)
    a, b = srv.encrypt(vals), srv.encrypt(vals)
    prod = a * b
    plain = srv.plain(vals)
    big = prod * plain
    loaded = kh.load(big.serialize())
    # moved ciphertexts are fresh (2 components: centroids, one-hots, selections) or products (3)
    transfer = np.mean([_median_s(lambda: kh.load(a.serialize())),
                        _median_s(lambda: kh.load(big.serialize()))])
    out = {}
    if ckks:  # the server's conjugation (a key switch) of a relinearised product, as it uses it
        from methods.he.levels import raw

        srv_c = Codec(load_context(public_bytes(ctx, relin_keys=True)), params)
        srv_c.levels.load_conjugation_key(kh.levels.conjugation_key())
        ct = raw(srv_c.load(prod.serialize()))
        srv_c.levels._relinearize(ct)
        out["conj"] = _median_s(lambda: srv_c.levels.conjugate(ct))
    return out | {
        "ct_mul": _median_s(lambda: a * b),
        "pt_mul": _median_s(lambda: prod * plain),
        "sc_mul": _median_s(lambda: a * (1.5 if ckks else 3)),
        "add": _median_s(lambda: prod + prod),
        "encrypt": _median_s(lambda: srv.encrypt(vals)),  # public key (server)
        "encrypt_sk": _median_s(lambda: kh.encrypt(vals)),  # secret key (key holder)
        "decrypt": _median_s(lambda: kh.decrypt(loaded)),  # a product (3 components; loading is transfer)
        "transfer": float(transfer),  # serialize + deserialize, mean of the two kinds
    }


def slot_sum_alternatives(params) -> dict:
    """Summing one ciphertext's slots: rotate-and-sum on the server (needs Galois keys) against
    the masked sum (server adds a fresh zero-sum mask, the key holder decrypts and sums). Same
    process, same parameters; seconds per ciphertext, and the public context sizes."""
    import tenseal as ts

    from methods.he.blinding import zero_sum_vector
    from methods.he.crypto import Codec, load_context, make_context, public_bytes

    if params.scheme != "ckks":
        return {}
    ctx = make_context(params)
    kh = Codec(ctx, params)
    srv = Codec(load_context(public_bytes(ctx)), params)
    rng = np.random.default_rng(1)
    ct = srv.encrypt(rng.normal(size=params.slots))
    masked = _median_s(lambda: kh.decrypt((ct + srv.encrypt(zero_sum_vector(params, rng))).serialize()).sum())
    gal = ctx.copy()
    gal.generate_galois_keys()
    gal_pub = gal.copy()
    gal_pub.make_context_public()
    ct_g = ts.ckks_vector_from(gal_pub, ct.serialize())
    rotate = _median_s(lambda: Codec(gal, params).decrypt(ct_g.sum().serialize()), repeat=5)
    return {"masked_sum_s": round(masked, 5), "rotate_sum_s": round(rotate, 5),
            "public_context_bytes": len(public_bytes(ctx)),
            "public_context_with_galois_bytes": len(gal_pub.serialize())}


def bytes_report(model, X: np.ndarray, k: int, iters: int) -> dict:
    """Bytes by stage and per customer, and one Lloyd iteration's measured bytes against the protocol floor
    (:func:`methods.he.kmeans_protocol.lloyd_bytes_floor`: at the last prime's 60 bits, and at the
    bits the differences need, their value bound plus a 2^30 scale plus one)."""
    from methods.he.kmeans_protocol import lloyd_bytes_floor

    params, (n, d) = model.params_, X.shape
    stages = model.costs_.extra["channel_stages"]
    lloyd = stages.get("lloyd", {}).get("bytes", 0)
    per_iter = lloyd / max(iters, 1)
    out = {"bytes_by_stage": {name: st.get("bytes", 0) for name, st in stages.items()},
           "bytes_per_customer": round(model.costs_.bytes_total / n, 1),
           "lloyd_bytes_per_iteration": int(per_iter),
           "lloyd_bytes_per_customer_per_iteration": round(per_iter / n, 1)}
    if params.scheme == "ckks":
        need = np.log2(96 * float((X**2).sum(1).max()) + 1) + 30 + 1
        for name, bits in (("floor", None), ("floor_ideal", float(np.ceil(need)))):
            f = lloyd_bytes_floor(n, k, d, params, bits)
            out[name] = {key: round(v, 1) for key, v in f.items()}
            out[f"lloyd_over_{name}"] = round(per_iter / f["per_iteration"], 2)
    return out


def lower_bound(ops: dict[str, int], times: dict[str, float], workers: int) -> float:
    total = 0.0
    for key, count in ops.items():
        op = key.split(".")[-1]
        total += count * times.get(op, 0.0)
    return total / workers


def run_he(X, k, workers, scheme, init, seed, transport="local", network=None, max_iter=300, **extra):
    """Returns the fitted model, its wall seconds, its CPU seconds (this process and its worker
    processes: a load-independent figure on a shared machine) and the process tree's peak memory
    during the fit (:class:`~benchmarks.perf._rss.TreeRSS`)."""
    from methods.he import HEKMeans

    with TreeRSS() as rss:
        t, cpu = time.perf_counter(), cpu_seconds()
        model = HEKMeans(n_clusters=k, init=init, scheme=scheme, workers=workers, random_state=seed,
                         transport=transport, network=network, max_iter=max_iter, **extra).fit(X)
        wall, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    return model, wall, cpu, rss.report()


def accuracy(X, ks, scheme, workers, seed, max_iter) -> dict:
    from methods.he import HEKMeans, quantized_lloyd
    from methods.plaintext import reference_init

    rows = []
    for k in ks:
        init = reference_init(X, k, seed)
        t = time.perf_counter()
        model = HEKMeans(n_clusters=k, init=init, scheme=scheme, workers=workers, random_state=seed,
                         max_iter=max_iter, tol=1e-4 if scheme == "ckks" else 0.0).fit(X)
        row = {"k": k, "iterations": model.n_iter_, "he_wall_s": round(time.perf_counter() - t, 2)}
        if scheme == "ckks":
            km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=model.n_iter_, tol=0.0,
                        algorithm="lloyd").fit(X)
            row.update(ari=float(adjusted_rand_score(model.labels_, km.labels_)),
                       max_center_diff=float(np.abs(model.cluster_centers_ - km.cluster_centers_).max()),
                       ckks_max_error=model.max_decryption_error_)
        else:
            scale = 2**model.params_.frac_bits
            labels, centers, n_iter = quantized_lloyd(np.rint(X * scale).astype(np.int64),
                                                      np.rint(init * scale).astype(np.int64), max_iter)
            row.update(reference_iterations=n_iter,
                       labels_identical=bool(np.array_equal(labels, model.labels_)),
                       centers_identical=bool(np.array_equal(centers, model.centers_encoded_)),
                       plain_modulus_bits=int(model.params_.plain_modulus).bit_length())
        print(row, flush=True)
        rows.append(row)
    return {"benchmark": "he_kmeans_accuracy", "scheme": scheme, "n": int(len(X)), "d": int(X.shape[1]),
            "workers": workers, "per_k": rows}


def growth_exponent(ns, values) -> float | None:
    """The least-squares slope of log(value) against log(n)."""
    ns, values = np.asarray(ns, float), np.asarray(values, float)
    if len(ns) < 2 or not (values > 0).all():
        return None
    return float(np.polyfit(np.log(ns), np.log(values), 1)[0])


def scaling(sizes: list[int], args, extra: dict) -> dict:
    """One HE K-means run per size (``--repeat`` runs each, medians), from the same kind of rows;
    per size: wall, CPU, iterations, Lloyd seconds per iteration, the tree's peak RSS and ARI
    against scikit-learn from the same initial centers; and the growth exponents in n."""
    per_n = []
    for n in sizes:
        X, source = rows(n, args.source, args.seed)
        runs = [run_he(X, args.k, args.workers, args.scheme, args.init, args.seed, max_iter=args.max_iter,
                       **extra) for _ in range(max(args.repeat, 1))]
        model, wall, cpu, rss = sorted(runs, key=lambda r: r[1])[(len(runs) - 1) // 2]
        km = KMeans(n_clusters=args.k, init=model.init_centers_, n_init=1, max_iter=max(model.n_iter_, 1),
                    tol=0.0, algorithm="lloyd").fit(X)
        phases = model.costs_.phases
        row = {"n": n, "data": source, "iterations": int(model.n_iter_), "he_wall_s": round(wall, 2),
               "he_wall_s_runs": [round(r[1], 2) for r in runs], "he_cpu_s": round(cpu, 2),
               "lloyd_s_per_iteration": round(phases.get("lloyd", 0.0) / max(model.n_iter_, 1), 3),
               "phases_s": {p: round(v, 2) for p, v in phases.items()},
               "tree_peak_rss_mb": rss["tree_peak_rss_mb"], "tree_peak_pss_mb": rss["tree_peak_pss_mb"],
               "ari_vs_sklearn": round(float(adjusted_rand_score(model.labels_, km.labels_)), 6),
               "bytes_total": int(model.costs_.bytes_total)}
        print(row, flush=True)
        per_n.append(row)
        del X, model, runs, km
    ns = [r["n"] for r in per_n]
    wall_no_startup = [r["he_wall_s"] - r["phases_s"].get("startup", 0.0) for r in per_n]
    return {"benchmark": "he_kmeans_scaling", "workers": args.workers, "k": args.k,
            "backend": extra["backend"], "per_n": per_n,
            "exponent_wall": growth_exponent(ns, wall_no_startup),
            "exponent_cpu": growth_exponent(ns, [r["he_cpu_s"] for r in per_n]),
            "exponent_lloyd_per_iteration": growth_exponent(ns, [r["lloyd_s_per_iteration"] for r in per_n]),
            "exponent_peak_rss": growth_exponent(ns, [r["tree_peak_rss_mb"] for r in per_n])}


def main(argv: list[str]) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf he_kmeans")
    ap.add_argument("--subsample", type=int, default=None,
                    help="rows of bank_full before the split (default all)")
    ap.add_argument("--rows", default=None,
                    help="N rows for a scaling run instead (see --source); a comma-separated list runs "
                         "each size and fits the growth exponent of wall time in n")
    ap.add_argument("--source", default="auto", choices=["auto", "synthetic", "resample"],
                    help="where --rows come from: dataset=synthetic, or bank_full resampled with jitter "
                         "(auto: synthetic when conf/dataset/synthetic.yaml exists)")
    ap.add_argument("--fast", action="store_true",
                    help="skip the per-op timings and the slot-sum comparison (scaling runs)")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheme", default="ckks", choices=["ckks", "bfv"])
    ap.add_argument("--init", default="kmeans++", choices=["kmeans++", "kmeans_parallel", "random"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speedup", action="store_true", help="also run 1 worker and report the speed-up")
    ap.add_argument("--repeat", type=int, default=1, help="runs per configuration (medians reported)")
    ap.add_argument("--accuracy", default=None, help="comma-separated k values: accuracy against plaintext")
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--backend", default="local", choices=["local", "ray"],
                    help="where the workers run: this machine's pool, or Ray actors")
    ap.add_argument("--ray-address", default=None,
                    help="with --backend ray: HOST:PORT of a running cluster's head "
                         "(default: a node for the run)")
    _network.add_arguments(ap)
    args = ap.parse_args(argv)
    extra = {"backend": args.backend, "ray_address": args.ray_address}
    sizes = [int(v) for v in str(args.rows).split(",")] if args.rows is not None else None
    if sizes is not None and len(sizes) > 1:
        return scaling(sizes, args, extra)
    network = _network.profile(args.network)

    source = "bank_full" if args.subsample is None else f"bank_full subsample {args.subsample}"
    if sizes is not None:
        if sizes[0] < 2:
            ap.error(f"--rows {sizes[0]}: expected at least 2")
        t = time.perf_counter()
        X, source = rows(sizes[0], args.source, args.seed)
        print(f"{len(X):,} rows from {source} in {time.perf_counter() - t:.1f} s", flush=True)
    else:
        X = _data(args.subsample)
    if args.accuracy:
        ks = [int(k) for k in args.accuracy.split(",")]
        return accuracy(X, ks, args.scheme, args.workers, args.seed, args.max_iter)
    if args.repeat < 1:
        ap.error(f"--repeat {args.repeat}: expected at least 1")
    runs, one_runs = [], []
    for _ in range(args.repeat):  # alternate the configurations: the machine's load hits both alike
        runs.append(run_he(X, args.k, args.workers, args.scheme, args.init, args.seed, args.transport,
                           network, args.max_iter))
        if args.speedup and args.workers > 1:
            one_runs.append(run_he(X, args.k, 1, args.scheme, args.init, args.seed, args.transport, network,
                                   args.max_iter))
    model, he_wall, he_cpu, he_rss = sorted(runs, key=lambda r: r[1])[(len(runs) - 1) // 2]
    iters = model.n_iter_

    t = time.perf_counter()
    km = KMeans(n_clusters=args.k, init=model.init_centers_, n_init=1, max_iter=max(iters, 1), tol=0.0,
                algorithm="lloyd").fit(X)
    plain_wall = time.perf_counter() - t

    times = {} if args.fast else op_times(model.params_)
    lb = lower_bound(model.ops_, times, args.workers)
    out = {
        "benchmark": "he_kmeans", "scheme": args.scheme, "init": args.init, "workers": args.workers,
        "data": source, "n": int(len(X)), "d": int(X.shape[1]), "k": args.k, "iterations": int(iters),
        "rounds": int(model.costs_.rounds),
        "he_wall_s": round(he_wall, 3), "he_cpu_s": round(he_cpu, 3),
        "plaintext_wall_s": round(plain_wall, 4),
        "ratio": round(he_wall / plain_wall, 1),
        "phases_s": {p: round(v, 3) for p, v in model.costs_.phases.items()},
        "ops": model.ops_, "op_ms": {key: round(v * 1e3, 3) for key, v in times.items()},
        "lower_bound_s": round(lb, 3) if times else None,
        "efficiency": round(lb / he_wall, 3) if times else None,
        "ari_vs_sklearn": round(float(adjusted_rand_score(model.labels_, km.labels_)), 6),
        "max_center_diff": float(np.abs(model.cluster_centers_ - km.cluster_centers_).max()),
        "points_per_s": round(len(X) / he_wall, 1),
        "bytes_total": int(model.costs_.bytes_total),
        "public_context_bytes": int(model.costs_.extra["public_context_bytes"]),
        "ciphertext_bytes": model.costs_.extra["ciphertext_bytes"],
    }
    out.update(bytes_report(model, X, args.k, iters))
    if not args.fast:
        out["slot_sum"] = slot_sum_alternatives(model.params_)
    if args.repeat > 1:
        out["he_wall_s_runs"] = [round(r[1], 3) for r in runs]
    if one_runs:
        one_model, one, one_cpu, _ = sorted(one_runs, key=lambda r: r[1])[(len(one_runs) - 1) // 2]
        out["he_wall_s_1_worker"] = round(one, 3)
        out["he_cpu_s_1_worker"] = round(one_cpu, 3)
        out["lower_bound_s_1_worker"] = round(lower_bound(one_model.ops_, times, 1), 3)
        out["efficiency_1_worker"] = round(out["lower_bound_s_1_worker"] / one, 3)
        out["speedup"] = round(one / he_wall, 2)
        if args.repeat > 1:
            out["he_wall_s_1_worker_runs"] = [round(r[1], 3) for r in one_runs]
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)  # the largest single process of the whole benchmark
    out.update(he_rss)  # the HE fit's process tree, sampled (benchmarks/perf/_rss.py)
    # last: the run on its network (wall measured through the shaped link with --transport grpc)
    out.update(_network.summary(args.transport, network, he_wall, int(model.costs_.bytes_total),
                                int(model.costs_.rounds), len(X), model.costs_.extra.get("wire")))
    return out
