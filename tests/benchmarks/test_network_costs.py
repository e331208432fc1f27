"""Cost on a network: every record says what its traffic costs on its profile; the report's table
and figure read the records' bytes and rounds, measured where a run crossed a shaped link."""

from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from benchmarks import _network_costs as NC
from benchmarks._doc import Doc
from benchmarks.run import run_job

REPO = Path(__file__).resolve().parents[2]


def test_every_record_carries_its_network_cost(tmp_path):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["dataset.subsample=600", "leakage.enabled=false", "network=wan"])
    record = run_job(cfg, tmp_path)
    assert record["costs"]["network"] == {"profile": "wan", "bandwidth_mbit": 100.0, "rtt_ms": 40.0,
                                          "modelled_s": 0.0, "measured": False}


def _row(method, wall, nbytes, rounds, profile="loopback", measured=False, transport="local"):
    return {"method": method, "dataset": "bank_full", "dataset.include_duration": False,
            "dataset.subsample": None, "k": 4, "seed": 0, "status": "ok", "wall_s": wall,
            "bytes_total": nbytes, "rounds": rounds, "epsilon": float("nan"), "n_train": 100,
            "method.transport": transport, "network.profile": profile, "network.measured": measured,
            "network.bandwidth_mbit": None, "network.rtt_ms": 0.0}


@pytest.fixture
def rows():
    return pd.DataFrame([_row("plaintext", 1.0, 0, 0), _row("he", 10.0, 125_000_000, 10),
                         _row("he", 23.0, 125_000_000, 10, "wan", True, "grpc")])


def test_the_table_models_every_profile_and_marks_what_was_measured(rows):
    table = NC.cost_table(rows).set_index("Method")
    he, plain = table.loc["HE (CKKS)"], table.loc["Plaintext"]
    assert he["Compute (s)"] == "10.0"  # the unshaped run; deployment options are not variants
    assert he["lan: network (s)"] == "1.0" and he["lan: total (s)"] == "11.0"  # 1 s + 10 x 0.5 ms
    assert he["wan: total (s)"] == "23.0 (measured)" and he["wan: network (s)"] == "13.0 (measured)"
    assert plain["wan: total (s)"] == "1.0" and plain["wan: network (s)"] == "0.0"
    doc = Doc()
    NC.section(doc, rows)
    assert "Cost on a network" in doc.markdown(Path("."))


def test_the_figure_is_drawn(rows, tmp_path):
    figs = NC.figures(rows, "bank_full (no duration)", "bank_full", tmp_path)
    assert [f.kind for f in figs] == ["network"]
    assert Path(figs[0].png).stat().st_size > 0 and Path(figs[0].pdf).is_file()
