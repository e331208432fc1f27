"""Values in a CSV that must be refused: non-finite or implausible numbers; huge values quoted short."""

from __future__ import annotations

import pytest

import datasets
from datasets import DataError

HEADER = '"age";"job";"marital";"education";"default";"balance";"housing";"loan";"contact";"day";"month";"duration";"campaign";"pdays";"previous";"poutcome";"y"\n'
ROW = '58;"management";"married";"tertiary";"no";2143;"yes";"no";"unknown";5;"may";261;1;-1;0;"unknown";"no"\n'
HUGE = "9" * 500_000 + "x" * 500_000  # a 1 MB value


def _read(make_dataset_config, directory, **kw):
    cfg = make_dataset_config("bank_full", data_dir=str(directory), download=False, verify_checksum=False, **kw)
    return datasets.read_frame(cfg)


@pytest.mark.parametrize(
    "value, message",
    [
        ("inf", r"1 non-finite value\(s\) \(e\.g\. 'inf' on line 3\); expected finite numbers"),
        ("-inf", r"1 non-finite value\(s\) \(e\.g\. '-inf' on line 3\)"),
        ("-Infinity", r"1 non-finite value\(s\) \(e\.g\. '-Infinity' on line 3\)"),
        ("1e400", r"1 non-finite value\(s\) \(e\.g\. '1e400' on line 3\)"),
        ("1e308", r"1 implausibly large value\(s\) \(e\.g\. '1e308' on line 3\); expected numbers of magnitude at most 1e\+15"),
        ("-2e15", r"1 implausibly large value\(s\) \(e\.g\. '-2e15' on line 3\)"),
    ],
)
def test_non_finite_and_huge_numbers_are_refused_naming_file_column_line(make_dataset_config, tmp_path,
                                                                       value, message):
    (tmp_path / "bank-full.csv").write_text(HEADER + ROW + ROW.replace("2143", value))
    with pytest.raises(DataError, match=r"bank-full\.csv: column 'balance' has " + message):
        _read(make_dataset_config, tmp_path)


def test_a_large_but_plausible_number_is_kept(make_dataset_config, tmp_path):
    (tmp_path / "bank-full.csv").write_text(HEADER + ROW.replace("2143", "1e15"))
    assert _read(make_dataset_config, tmp_path)[0]["balance"].tolist() == [1e15]


@pytest.mark.parametrize(
    "text, message",
    [
        (HEADER + ROW.replace("2143", HUGE), r"column 'balance' has 1 missing or non-numeric"),
        (HEADER + ROW.replace('"management"', HUGE), r"column 'job' has unknown value"),
        (HEADER + ROW.replace('"no"\n', f'"{HUGE}"\n'), r"column 'y' has value"),
        (HEADER.replace('"y"', f'"y";"{HUGE}"') + ROW.replace('"no"\n', '"no";1\n'), r"unexpected columns"),
        (HEADER.replace('"age"', f'"{HUGE}"') + ROW, r"missing columns \['age'\]; unexpected columns"),
    ],
    ids=["numeric", "category", "target", "column-name", "renamed-column"],
)
def test_a_huge_value_is_quoted_short(make_dataset_config, tmp_path, text, message):
    (tmp_path / "bank-full.csv").write_text(text)
    cfg = make_dataset_config("bank_full", data_dir=str(tmp_path), download=False, verify_checksum=False)
    with pytest.raises(DataError, match=message) as info:
        datasets.read_frame(cfg)
    assert len(str(info.value)) < 500 + len(str(tmp_path))
