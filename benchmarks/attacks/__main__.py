"""Measure leakage outside the runner: ``python -m benchmarks.attacks [options]``.

Fits the plaintext method on a dataset split, runs every attack with the leaky references on
(random forest, small training sets), the FedAvg reconstruction sweep and the HE ciphertext check,
prints tables, and prints last one JSON line with every number.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from threadpoolctl import threadpool_limits

from methods._util import CONF, jsonable

ATTACKS = ("mia", "lira", "centroid_mia", "rf_mia", "rf_lira", "small_mia", "small_lira",
           "small_centroid_mia")


def _args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.attacks", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="bank_full", help="conf/dataset/<name>.yaml (default bank_full)")
    p.add_argument("--subsample", type=int, default=None, help="rows (stratified); default all")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0, help="method seed")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--n-estimators", type=int, default=100, help="random-forest reference trees")
    p.add_argument("--small-size", type=int, default=100)
    p.add_argument("--small-repeats", type=int, default=10)
    p.add_argument("--he-ciphertexts", type=int, default=200)
    p.add_argument("--fl-clients", type=int, default=50)
    p.add_argument("--fl-rounds", type=int, default=3)
    p.add_argument("--skip", nargs="*", default=[], choices=["reference", "small_train", "fl", "he"])
    return p.parse_args(argv)


def _print_membership(a, split, leak: dict) -> None:
    print(f"membership inference on {a.dataset} (train {len(split.train)}, test {len(split.test)}); "
          f"targets {leak['protocol']['members']} + {leak['protocol']['nonmembers']}")
    print(f"{'attack':<20}{'auc':>7}{'auc 95% CI':>18}{'tpr@0.1%':>10}{'tpr@1%':>9}{'adv':>7}"
          f"{'eps_lb':>8}{'members':>9}")
    for name in ATTACKS:
        if f"{name}_auc" not in leak:
            continue
        lo, hi = leak[f"{name}_auc_ci"]
        print(f"{name:<20}{leak[f'{name}_auc']:>7.3f}{f'[{lo:.3f}, {hi:.3f}]':>18}"
              f"{leak[f'{name}_tpr_at_fpr_0_001']:>10.4f}{leak[f'{name}_tpr_at_fpr_0_01']:>9.4f}"
              f"{leak[f'{name}_advantage']:>7.3f}{leak[f'{name}_eps_lb']:>8.2f}{leak[f'{name}_n_members']:>9}")
    print(f"small clusters (<10 members): {leak.get('small_clusters')}; "
          f"smallest cluster {leak.get('min_cluster_size')}; seconds {leak['seconds']}")
    if leak["errors"]:
        print("errors:", leak["errors"])


def _fl_sweep(a, split) -> dict:
    """The FedAvg reconstruction sweep, printed; its rows and seconds."""
    from benchmarks.attacks import reconstruction_sweep

    t = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        rows = reconstruction_sweep(split.train.X, split.train.y, n_clients=a.fl_clients,
                                    rounds=a.fl_rounds, seed=a.seed)
    seconds = time.perf_counter() - t
    print("\nFedAvg LR reconstruction x = dw/db (numpy simulation, "
          f"{a.fl_clients} clients, {a.fl_rounds} rounds, lr 0.1; truth = record if 1 row, else mean)")
    print(f"{'records':>8}{'batch':>6}{'epochs':>7}{'cos mean':>10}{'cos min':>9}{'cos>=.99':>9}"
          f"{'label acc':>10}  cos by round")
    for r in rows:
        acc = "-" if r["label_accuracy"] is None else f"{r['label_accuracy']:.3f}"
        by = " ".join(f"{c:.3f}" for c in r["cosine_by_round"])
        print(f"{r['records_per_client']:>8}{r['batch_size']:>6}{r['local_epochs']:>7}"
              f"{r['cosine_mean']:>10.4f}{r['cosine_min']:>9.4f}{r['frac_cosine_ge_0_99']:>9.3f}"
              f"{acc:>10}  {by}")
    return {"fl_reconstruction": rows, "fl_s": seconds}


def main(argv: list[str]) -> dict:
    from omegaconf import OmegaConf

    import datasets
    from benchmarks.attacks import ciphertext_leakage, leakage
    from methods.plaintext import PlaintextMethod

    a = _args(argv)
    dcfg = OmegaConf.load(CONF / "dataset" / f"{a.dataset}.yaml")
    dcfg.subsample = a.subsample
    split = datasets.load(dcfg, split_seed=a.split_seed)
    t = time.perf_counter()
    method = PlaintextMethod(n_clusters=a.k, random_state=a.seed).fit(
        split.train.X, split.train.y, split.train.X_segment)
    fit_s = time.perf_counter() - t
    cfg = {"reference": {"enabled": "reference" not in a.skip, "n_estimators": a.n_estimators},
           "small_train": {"enabled": "small_train" not in a.skip, "size": a.small_size,
                           "repeats": a.small_repeats}}
    t = time.perf_counter()
    leak = leakage(method, split, a.split_seed, cfg)
    leak_s = time.perf_counter() - t
    result = {"dataset": a.dataset, "n_train": len(split.train), "n_test": len(split.test),
              "k": a.k, "seed": a.seed, "split_seed": a.split_seed, "fit_s": fit_s, "leakage_s": leak_s,
              "leakage": {k: v for k, v in leak.items() if k != "roc"}}

    _print_membership(a, split, leak)

    if "fl" not in a.skip:
        result.update(_fl_sweep(a, split))

    if "he" not in a.skip:
        t = time.perf_counter()
        he = ciphertext_leakage(a.he_ciphertexts, seed=a.seed)
        result["he"] = he
        result["he_s"] = time.perf_counter() - t
        lo, hi = he["he_ciphertext_auc_ci"]
        print(f"\nHE: bit from CKKS ciphertext bytes ({he['he_ciphertext_n']} ciphertexts, "
              f"{he['he_ciphertext_params']}): AUC {he['he_ciphertext_auc']:.3f} [{lo:.3f}, {hi:.3f}]; "
              f"same classifier on unencrypted tensors: AUC {he['he_plaintext_control_auc']:.3f}")
    return result


if __name__ == "__main__":
    out = main(sys.argv[1:])
    print(json.dumps(jsonable(out)))
