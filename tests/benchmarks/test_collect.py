"""benchmarks.collect: one tidy row per run, parameters as columns, atomic outputs."""

from __future__ import annotations

import json
import math
import shutil

import pandas as pd
import pytest

from benchmarks import collect as C
from benchmarks.record import read_record


def test_one_row_per_run_with_parameters_as_columns(smoke_table, store):
    records = [read_record(p) for p in sorted((store / "smoke").glob("*/record.json"))]
    assert len(records) == 4  # smoke: k in {2, 4} x seeds {0, 1}, plaintext
    assert len(smoke_table) == 4
    assert set(zip(smoke_table["k"], smoke_table["seed"], strict=True)) == {(2, 0), (2, 1), (4, 0), (4, 1)}
    assert (smoke_table["status"] == "ok").all()
    assert (smoke_table["method"] == "plaintext").all()
    assert (smoke_table["dataset.subsample"] == 2000).all()
    assert smoke_table["config_hash"].is_unique
    for col in ("method", "dataset", "k", "seed", "split_seed", "dataset.include_duration", "method.max_iter",
                "n_train", "auc", "precision", "recall", "f1", "weighted_precision", "weighted_recall",
                "silhouette", "ari_vs_plaintext", "sizes", "lift", "profile", "wall_s", "cpu_s",
                "bytes_total", "rounds", "parallel", "phase.segmentation_s", "party.owner.cpu_s",
                "threat_model", "epsilon", "git_commit", "version.scikit-learn", "record", "experiment"):
        assert col in smoke_table.columns, col
    assert (smoke_table["experiment"] == "smoke").all()
    assert not smoke_table["parallel"].any()  # the smoke experiment runs jobs one after another
    by_hash = {r["config_hash"]: r for r in records}
    for _, row in smoke_table.iterrows():
        rec = by_hash[row["config_hash"]]
        assert row["auc"] == rec["metrics"]["auc"]
        assert row["wall_s"] == rec["costs"]["wall_s"]
        assert json.loads(row["sizes"]) == rec["segmentation"]["sizes"]
        assert math.isnan(row["epsilon"])  # plaintext makes no DP claim


def test_whole_store_and_resume_pointers(store, table, tmp_path):
    assert len(table) == 6 and set(table["n_train"]) == {800, 1600}
    # a second sweep that only holds resume pointers collects to the same runs
    again = tmp_path / "again"
    for i, rec in enumerate(sorted((store / "smoke").glob("*/record.json"))):
        (again / str(i)).mkdir(parents=True)
        (again / str(i) / "skipped.json").write_text(json.dumps({"record": str(rec)}))
    pointed = C.collect([again])
    assert sorted(pointed["config_hash"]) == sorted(C.collect([store / "smoke"])["config_hash"])
    # the same run reached twice (directly and through a pointer) is one row
    assert len(C.collect([store / "smoke", again])) == 4


def test_duplicates_keep_the_newest_ok_and_bad_files_are_skipped(store, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(store / "smoke", copy)
    first = sorted(copy.glob("*/record.json"))[0]
    rec = read_record(first)
    failed = dict(rec, status="failed", error="RuntimeError: later failure")
    failed["provenance"] = dict(rec["provenance"], finished_at="9999-12-31T00:00:00+00:00")
    (copy / "later").mkdir()
    (copy / "later" / "record.json").write_text(json.dumps(failed))
    (copy / "broken").mkdir()
    (copy / "broken" / "record.json").write_text('{"schema": 1, "status": "ok", "config_h')  # torn write
    table = C.collect([copy])
    assert len(table) == 4 and (table["status"] == "ok").all()
    everything = C.collect([copy], keep_all=True)
    assert len(everything) == 5 and (everything["status"] == "failed").sum() == 1


@pytest.mark.parametrize(("method", "privacy", "config", "expected"), [
    ("dp", {"epsilon": 1.0}, {}, 1.0),
    ("dp", {"epsilon": "inf"}, {}, math.inf),
    ("dp", {"epsilon": None}, {}, math.inf),
    ("dp", {"epsilon": None}, {"epsilon": 0.5}, 0.5),
    ("federated", {"epsilon": 2.5}, {}, 2.5),
    ("he", {"epsilon": None}, {}, math.nan),
])
def test_epsilon_column(method, privacy, config, expected):
    eps = C.epsilon_of({"method": method, "privacy": privacy, "config": {"method": config}})
    assert (math.isnan(eps) and math.isnan(expected)) or eps == expected


def test_cli_writes_parquet_and_csv(store, tmp_path, capsys):
    assert C.main([str(store / "smoke"), "-o", str(tmp_path / "t")]) == 0
    parquet, csv = pd.read_parquet(tmp_path / "t.parquet"), pd.read_csv(tmp_path / "t.csv")
    assert len(parquet) == len(csv) == 4
    assert list(parquet.columns) == list(csv.columns)
    assert "4 runs" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_refuses_missing_dir(tmp_path):
    with pytest.raises(SystemExit):
        C.main([str(tmp_path / "nowhere")])
