"""``dataset=csv``: a researcher's own table, here bank_full with every column renamed, comma-separated.

It must load through the Hydra config group like any dataset, give the same plaintext AUC as bank_full,
and refuse a bad file or config with a message naming the file, column and line.
"""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import benchmarks.config  # noqa: F401  (registers the schemas the config files name)
import datasets
from benchmarks.config_check import check
from datasets import ConfigError, DataError
from datasets._source import sha256

REPO = Path(__file__).resolve().parents[2]
BANK = OmegaConf.load(REPO / "conf" / "dataset" / "bank_full.yaml")
TARGET = "subscribed"


def renamed(col: str) -> str:
    return f"c_{col}"


def write_table(path: Path, rows: int | None = None) -> Path:
    """bank-full.csv (shipped copy) without ``duration``, columns renamed, ``,``-separated; the values
    are the file's own strings."""
    raw = lzma.decompress((REPO / "datasets" / "data" / "bank-full.csv.xz").read_bytes())
    frame = pd.read_csv(pd.io.common.BytesIO(raw), sep=";", dtype=str, keep_default_na=False)
    frame = frame.drop(columns=["duration"]).rename(columns={c: renamed(c) for c in frame if c != "y"})
    frame = frame.rename(columns={"y": TARGET})
    (frame if rows is None else frame.iloc[:rows]).to_csv(path, index=False)
    return path


def _q(value) -> str:
    return "'" + str(value).replace("'", "\\'") + "'"


def overrides(path: Path, **extra) -> list[str]:
    """The command-line overrides that describe the renamed table to ``dataset=csv``."""
    numeric = {renamed(c): b for c, b in BANK.numeric.items() if c != "duration"}
    num = ",".join(f"{c}:[{b[0]},{b[1]}]" for c, b in numeric.items())
    cat = ",".join(f"{renamed(c)}:[{','.join(_q(v) for v in vals)}]" for c, vals in BANK.categorical.items())
    seg = ",".join(renamed(c) for c in BANK.segment_features)
    heavy = ",".join(renamed(c) for c in BANK.heavy_tailed if c != "duration")
    out = ["dataset=csv", f"dataset.file={path}", f"++dataset.numeric={{{num}}}", f"++dataset.categorical={{{cat}}}",
           f"dataset.target.column={TARGET}", "dataset.target.positive=yes", f"dataset.segment_features=[{seg}]",
           f"dataset.heavy_tailed=[{heavy}]", f"dataset.never_contacted={{column:{renamed('pdays')},sentinel:-1}}"]
    return out + [f"{k}={v}" for k, v in extra.items()]


def composed(*args: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(args), return_hydra_config=True)
    return check(cfg, cfg.hydra.runtime.choices)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return write_table(tmp_path_factory.mktemp("csv") / "customers.csv")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return write_table(tmp_path_factory.mktemp("csv") / "small.csv", rows=300)


@pytest.fixture(scope="module")
def spec(small):
    """The dataset config of the 300-row table, as the runner's check returns it."""
    return OmegaConf.create(OmegaConf.to_container(composed(*overrides(small)).dataset))


def test_the_renamed_table_gives_bank_fulls_features_and_auc(table):
    from benchmarks.run import execute

    common = ["method=plaintext", "k=3", "leakage.enabled=false", "dataset.subsample=1500", "silhouette_sample=200"]
    bank = composed("dataset=bank_full", *common)
    mine = composed(*overrides(table), *common)
    # in this order, each file is parsed once (the loader keeps one parsed frame)
    a = datasets.load(bank.dataset)
    auc_bank = execute(bank)["metrics"]["auc"]
    b = datasets.load(mine.dataset)
    auc_csv = execute(mine)["metrics"]["auc"]
    np.testing.assert_array_equal(a.train.X, b.train.X)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    assert b.feature_names == [f"c_{n}" for n in a.feature_names]
    assert abs(auc_bank - auc_csv) <= 1e-9 and 0.6 < auc_csv < 1


def test_the_data_identity_is_the_files(small, spec):
    ident = datasets.data_identity(spec)
    assert ident == {"sha256": sha256(small.read_bytes()), "source": "file", "location": str(small)}


def test_a_given_sha256_is_checked(small, spec):
    ok = OmegaConf.merge(spec, {"csv_sha256": sha256(small.read_bytes())})
    assert len(datasets.read_frame(ok)[0]) == 300
    wrong = OmegaConf.merge(spec, {"csv_sha256": "0" * 64, "expected_rows": 300})
    with pytest.raises(DataError, match=r"small\.csv: sha256 mismatch \(expected 0{64}, got [0-9a-f]{64}\); "
                                        r"the file parses but its contents were altered\. Restore the file, or set "
                                        r"dataset\.csv_sha256"):
        datasets.read_frame(wrong)
    with pytest.raises(DataError, match=r"it has 300 data rows, expected 301 \(truncated or edited\?\)"):
        datasets.read_frame(OmegaConf.merge(spec, {"csv_sha256": "0" * 64, "expected_rows": 301}))


def _edit(small: Path, tmp_path: Path, edit) -> Path:
    lines = small.read_text().splitlines(keepends=True)
    out = tmp_path / "edited.csv"
    out.write_text("".join(edit(lines)))
    return out


def _cell(lines: list[str], row: int, col: int, value: str) -> list[str]:
    fields = lines[row].rstrip("\n").split(",")
    fields[col] = value
    return lines[:row] + [",".join(fields) + "\n"] + lines[row + 1:]


HEADER = "c_age,c_job,c_marital,c_education,c_default,c_balance,c_housing,c_loan,c_contact,c_day,c_month,c_campaign,c_pdays,c_previous,c_poutcome,subscribed"


@pytest.mark.parametrize("edit, message", [
    (lambda ls: [ls[0].replace("c_balance,", "")] + [",".join(r.split(",")[:5] + r.split(",")[6:]) for r in ls[1:]],
     r"edited\.csv: missing columns \['c_balance'\]; expected \['c_age', "),
    (lambda ls: [ls[0].rstrip() + ",extra\n"] + [r.rstrip() + ",1\n" for r in ls[1:]],
     r"edited\.csv: unexpected columns \['extra'\]; expected "),
    (lambda ls: _cell(ls, 7, 1, "astronaut"),
     r"edited\.csv: column 'c_job' has unknown value\(s\) \['astronaut'\] \(line 8\); expected one of \['admin\.'"),
    (lambda ls: _cell(ls, 4, 5, ""),
     r"edited\.csv: column 'c_balance' has 1 missing or non-numeric value\(s\) \(e\.g\. '' on line 5\); expected numbers"),
    (lambda ls: _cell(ls, 4, 0, "NaN"),
     r"column 'c_age' has 1 missing or non-numeric value\(s\) \(e\.g\. 'NaN' on line 5\)"),
    (lambda ls: _cell(ls, 9, 9, "inf"),
     r"edited\.csv: column 'c_day' has 1 non-finite value\(s\) \(e\.g\. 'inf' on line 10\); expected finite numbers"),
    (lambda ls: _cell(_cell(ls, 3, 15, "maybe"), 6, 15, "maybe"),
     r"edited\.csv: column 'subscribed' has value\(s\) \['maybe'\] \(line 4, 7\); expected 'yes' or one other "
     r"value \(here 'no', the first\)"),
    (lambda ls: [], r"edited\.csv: the file is empty"),
    (lambda ls: ls[:1], r"edited\.csv: the file has a header but no data rows"),
    (lambda ls: ls[:-1] + [ls[-1][:12]],
     r"edited\.csv: line 301 has fewer fields than the header's 16; the file is truncated or a row is cut short"),
    (lambda ls: ls[:2] + [ls[2].rstrip() + ",1,2\n"] + ls[3:],
     r"edited\.csv: malformed CSV \(.*Expected 16 fields in line 3, saw 18\); expected a table separated by ','"),
])
def test_a_bad_table_is_refused_naming_file_column_and_line(small, spec, tmp_path, edit, message):
    assert small.read_text().splitlines()[0] == HEADER
    bad = _edit(small, tmp_path, edit)
    with pytest.raises(DataError, match=message):
        datasets.load(OmegaConf.merge(spec, {"file": str(bad)}))


def test_a_stated_negative_value_refuses_any_other(small, spec, tmp_path):
    bad = _edit(small, tmp_path, lambda ls: _cell(ls, 2, 15, "no "))  # stripped: accepted
    assert len(datasets.read_frame(OmegaConf.merge(spec, {"file": str(bad)}))[0]) == 300
    cfg = OmegaConf.merge(spec, {"target": {"negative": "nope"}})
    with pytest.raises(DataError, match=r"column 'subscribed' has value\(s\) \['no'\] \(line 2, 3, 4\); "
                                        r"expected 'yes' or 'nope'"):
        datasets.load(cfg)


def test_one_class_only_is_refused_naming_the_target(small, spec, tmp_path):
    bad = _edit(small, tmp_path, lambda ls: [ls[0]] + [r.replace(",yes\n", ",no\n") for r in ls[1:]])
    with pytest.raises(DataError, match=r"edited\.csv: column 'subscribed' has 0 row\(s\) of one class "
                                        r"\(not yes/yes: 300/0\)"):
        datasets.load(OmegaConf.merge(spec, {"file": str(bad)}))


def test_a_missing_file_is_refused(spec, tmp_path):
    with pytest.raises(DataError, match=r"dataset\.file=.*nothere\.csv: no such file"):
        datasets.load(OmegaConf.merge(spec, {"file": str(tmp_path / "nothere.csv")}))
    with pytest.raises(DataError, match=r"dataset\.file=.* is not a regular file"):
        datasets.load(OmegaConf.merge(spec, {"file": str(tmp_path)}))


@pytest.mark.parametrize("change, message", [
    ({"file": None}, r"dataset\.file is missing; expected the path of the table"),
    ({"separator": ";;"}, r"dataset\.separator=';;'; expected one character"),
    ({"target": None}, r"dataset\.target is missing; expected \{column: NAME, positive: VALUE\}"),
    ({"target": {"negative": "yes"}}, r"dataset\.target\.negative='yes' is the positive value too"),
    ({"target": {"column": "c_age"}}, r"dataset\.target\.column='c_age' is a feature column too"),
    ({"numeric": {"y": [0, 1]}}, r"dataset has a feature column named 'y', the name the loader gives the target"),
    ({"categorical": {"c_age": ["1", "2"]}}, r"dataset\.numeric and dataset\.categorical both have \['c_age'\]"),
    ({"categorical": {"c_loan": ["no", "no"]}}, r"dataset\.categorical\.c_loan=\['no', 'no'\]; expected its "
                                                r"categories, each once"),
    ({"csv_sha256": "abc"}, r"dataset\.csv_sha256='abc'; expected 64 lowercase hex digits or null"),
    ({"include_duration": True}, r"dataset\.include_duration=true; it applies to the UCI Bank Marketing data only"),
    ({"format": "xlsx"}, r"dataset\.format='xlsx'; expected one of uci, cdnow, csv, synthetic"),
])
def test_a_bad_csv_config_is_refused_before_reading(spec, change, message):
    cfg = OmegaConf.merge(spec, change) if "target" not in change or change["target"] is not None else \
        OmegaConf.merge(spec, {"target": None})
    with pytest.raises(ConfigError, match=message):
        datasets.check_config(cfg)


def test_the_composed_config_says_what_is_missing(small):
    with pytest.raises(ConfigError, match=r"dataset\.numeric is missing; give it a value"):
        composed("dataset=csv", f"dataset.file={small}")


# -- the worked example of docs/data.md ---------------------------------------------------------

EXAMPLE = ["dataset=csv", "dataset.file=/tmp/customers.csv",
           "++dataset.numeric={age:[18,90],spend:[0,5000],visits:[0,100]}",
           "++dataset.categorical={region:[north,south,east,west]}",
           "dataset.target.column=churned", "dataset.target.positive=yes",
           "dataset.segment_features=[spend,visits]", "dataset.heavy_tailed=[spend,visits]"]


def write_example(path: Path, n: int = 400, seed: int = 0) -> Path:
    """The table of docs/data.md's worked example: customers whose churn depends on visits and region."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 91, n)
    visits = rng.poisson(8, n)
    spend = np.round(rng.gamma(2.0, 60.0, n) * (1 + visits / 4), 2)
    region = rng.choice(["north", "south", "east", "west"], n)
    logit = 2.5 - 0.4 * visits + 1.5 * (region == "south") + 0.01 * (age - 50)
    churned = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    pd.DataFrame({"age": age, "spend": spend, "visits": visits, "region": region,
                  "churned": churned}).to_csv(path, index=False)
    return path


def test_the_worked_example_of_the_docs_runs(tmp_path):
    from benchmarks.run import execute

    doc = (REPO / "docs" / "data.md").read_text()
    assert all(o in doc for o in EXAMPLE[2:]), "docs/data.md shows the overrides this test runs"
    path = write_example(tmp_path / "customers.csv")
    assert path.read_text().splitlines()[0] in doc  # the header line it shows
    job = composed(*[o if not o.startswith("dataset.file=") else f"dataset.file={path}" for o in EXAMPLE],
                   "method=plaintext", "leakage.enabled=false")
    result = execute(job)
    assert result["data"]["n_train"] == 320 and result["data"]["n_features"] == 7
    assert result["metrics"]["auc"] > 0.7  # visits and region carry the signal


def test_a_bad_never_contacted_and_a_uci_config_without_its_checksum_are_refused(spec, make_dataset_config):
    with pytest.raises(ConfigError, match=r"dataset\.never_contacted=\{'column': 'c_job', 'sentinel': -1\}; "
                                          r"expected null or \{column: a numeric column of \['c_age'"):
        datasets.check_config(OmegaConf.merge(spec, {"never_contacted": {"column": "c_job"}}))
    with pytest.raises(ConfigError, match=r"^dataset\.csv_sha256 is missing; dataset\.format=uci needs it"):
        datasets.check_config(make_dataset_config("bank_full", csv_sha256=None))
