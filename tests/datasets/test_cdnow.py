"""dataset=cdnow: the CDNOW transactions shipped in the lifetimes wheel, one row per customer."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

import datasets
from datasets import ConfigError, DataError, _cdnow
from datasets._source import sha256

REPO = Path(__file__).resolve().parents[2]


def cdnow(**changes):
    cfg = OmegaConf.load(REPO / "conf" / "dataset" / "cdnow.yaml")
    del cfg["defaults"]
    return OmegaConf.merge(cfg, changes)


@pytest.fixture(scope="module")
def master() -> bytes:
    """The first 3,000 transactions of the shipped file (the damage tests' good copy, fast to parse)."""
    return b"\r\n".join(_cdnow.locate(cdnow()).read_bytes().split(b"\r\n")[:3001]) + b"\r\n"


def sample_config(master: bytes, **changes):
    return cdnow(csv_sha256=sha256(master), expected_rows=3000, **changes)


def test_customers_and_their_calibration_features():
    frame, label = datasets.read_frame(cdnow())
    assert label.endswith("lifetimes/datasets/CDNOW_master.txt") and len(frame) == 23_570
    assert list(frame.columns) == [*_cdnow.FEATURES, "y"]
    assert round(frame["y"].mean(), 4) == 0.2994  # a purchase in weeks 40-78
    # customer 00001: one purchase on 1997-01-01; 00003: 1997-01-02, 03-30, 04-02 in the window, then 11-15
    one, three = frame.iloc[0], frame.iloc[2]
    assert one.to_dict() == {"recency": 39.0, "frequency": 0.0, "monetary_mean": 11.77, "monetary_total": 11.77,
                             "cds": 1.0, "tenure": 39.0, "y": 0}
    assert three["frequency"] == 2 and three["recency"] == (273 - 91) / 7 and three["tenure"] == 272 / 7
    assert three["cds"] == 6 and np.isclose(three["monetary_total"], 61.06) and three["y"] == 1
    assert np.isclose(three["monetary_mean"], 61.06 / 3)
    lo, hi = np.array([cdnow().numeric[c] for c in _cdnow.FEATURES], dtype=float).T
    values = frame[_cdnow.FEATURES].to_numpy()
    assert (values >= lo).all() and (values <= hi).all()  # the public bounds hold on this file


def test_the_file_is_read_without_importing_the_package():
    sys.modules.pop("lifetimes", None)
    datasets.data_identity(cdnow())
    datasets.read_frame(cdnow(holdout_weeks=20))  # parsed again: another variant
    assert "lifetimes" not in sys.modules


def test_the_public_bounds_scale_every_column_into_the_unit_box():
    split = datasets.load(cdnow(scaling="public", clip=True, log_heavy_tailed=True, subsample=2000))
    assert split.segment_names == ["recency", "frequency", "monetary_mean"]
    for X in (split.train.X, split.test.X, split.train.X_segment):
        assert X.min() >= 0 and X.max() <= 1
    np.testing.assert_allclose(split.bounds, [[0, 1]] * 6)


def _damaged(tmp_path, monkeypatch, data: bytes):
    path = tmp_path / "CDNOW_master.txt"
    path.write_bytes(data)
    monkeypatch.setattr(_cdnow, "locate", lambda spec: path)
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"\r\n".join(b.split(b"\r\n")[:-101]) + b"\r\n",
     r"it has 2,900 transactions, expected 3,000 \(truncated or edited\?\)"),
    (lambda b: b.replace(b"11.77", b"11.78", 1), r"the file parses but its contents were altered\. Reinstall the "
                                                 r"package \(uv sync --reinstall-package lifetimes\)\."),
    (lambda b: b.rstrip().rsplit(b" ", 1)[0],
     r"line 3001 has 3 fields, expected 4 \(truncated or edited\?\) \[sha256 mismatch"),
    (lambda b: b.replace(b"19970112", b"19990112", 1),
     r"column 'date' has 1 invalid value\(s\) \(e\.g\. '19990112' on line 3\); expected a date YYYYMMDD from "
     r"19970101 to 19980630 \[sha256 mismatch"),
    (lambda b: b.replace(b"11.77", b"-1.77", 1), r"column 'dollar_value' has 1 invalid value\(s\) \(e\.g\. '-1\.77' on "
                                                 r"line 2\)"),
    (lambda b: b.replace(b"   11.77", b"   inf", 1), r"column 'dollar_value' .*'inf' on line 2"),
    (lambda b: b.replace(b" 00001 ", b" 0000x ", 1), r"column 'customer_id' has 1 invalid value\(s\) \(e\.g\. '0000x'"),
    (lambda b: b.replace(b"  1   11.77", b"  1.5   11.77", 1), r"column 'number_of_cds' has 1 invalid value"),
    (lambda b: b"", r"the file is empty \[sha256 mismatch"),
    (lambda b: b.split(b"\r\n")[0] + b"\r\n", r"the file has a header but no data rows"),
    (lambda b: b.replace(b"dollar_value", b"dollars", 1), r"header \[.*'dollars'\]; expected \['customer_id', "),
])
def test_a_damaged_copy_is_refused_saying_what_differs(tmp_path, monkeypatch, master, damage, message):
    _damaged(tmp_path, monkeypatch, master)
    assert len(datasets.read_frame(sample_config(master))[0]) == 885  # the sample itself loads
    _damaged(tmp_path, monkeypatch, damage(master))
    with pytest.raises(DataError, match=r"CDNOW_master\.txt: .*" + message):
        datasets.load(sample_config(master))


def test_a_customer_outside_the_cohort_is_refused(tmp_path, monkeypatch, master):
    _damaged(tmp_path, monkeypatch, master.replace(b" 00001 19970101", b" 00001 19971201", 1))
    with pytest.raises(DataError, match=r"customer 1 first buys on day 334 of 1997, after the 39-week "
                                        r"calibration window; expected the first-quarter cohort"):
        datasets.load(cdnow(verify_checksum=False))


def test_a_missing_package_or_file_is_refused():
    with pytest.raises(DataError, match=r"dataset\.package='no-such-dist' is not installed"):
        _cdnow.locate(cdnow(package="no-such-dist"))
    with pytest.raises(DataError, match=r"(?i)lifetimes 0\.11\.3 has no file lifetimes/datasets/nope\.txt"):
        _cdnow.locate(cdnow(package_file="lifetimes/datasets/nope.txt"))


@pytest.mark.parametrize("change, message", [
    ({"calibration_weeks": 12}, r"dataset\.calibration_weeks=12; expected at least 13"),
    ({"holdout_weeks": 0}, r"dataset\.holdout_weeks=0; expected a whole number of weeks >= 1"),
    ({"calibration_weeks": 52, "holdout_weeks": 30}, r"calibration_weeks \+ dataset\.holdout_weeks = 82; "
                                                     r"expected at most 78"),
    ({"numeric": {"age": [0, 1]}}, r"the cdnow customer features are the numeric columns \['recency'"),
    ({"categorical": {"genre": ["pop"]}}, r"dataset\.categorical \['genre'\]; the cdnow customer features"),
    ({"include_duration": True}, r"only the UCI Bank Marketing data has a duration column"),
    ({"csv_sha256": None}, r"dataset\.csv_sha256 is missing; dataset\.format=cdnow reads"),
    ({"package": "other"}, r"dataset\.name=cdnow but dataset\.package='other', while conf/dataset/cdnow\.yaml has "
                           r"package: lifetimes"),
])
def test_a_bad_cdnow_config_is_refused_before_reading(change, message):
    with pytest.raises(ConfigError, match=message):
        datasets.check_config(cdnow(**change))


def test_a_shorter_holdout_lowers_the_repeat_rate():
    frame, _ = datasets.read_frame(cdnow(holdout_weeks=13))
    assert len(frame) == 23_570 and 0.1 < frame["y"].mean() < 0.2994
