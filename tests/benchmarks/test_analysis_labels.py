"""Variant labels name what ran: an HE run's label carries its scheme."""

import pandas as pd

from benchmarks import _analysis as A
from benchmarks import report as R


def test_he_label_names_its_scheme():
    rows = pd.DataFrame({"method": ["he", "he", "plaintext"], "method.scheme": ["bfv", "bfv", None]})
    labels = A.add_variants(rows)["variant_label"].tolist()
    assert labels == ["HE (BFV)", "HE (BFV)", "Plaintext"]


def test_he_schemes_side_by_side_are_not_said_twice():
    rows = pd.DataFrame({"method": ["he", "he"], "method.scheme": ["ckks", "bfv"]})
    out = A.add_variants(rows)
    assert out["variant_label"].tolist() == ["HE (CKKS)", "HE (BFV)"]
    assert out["variant"].nunique() == 2


def test_without_a_scheme_column_the_default_name_stays():
    assert A.add_variants(pd.DataFrame({"method": ["he"]}))["variant_label"].tolist() == ["HE (CKKS)"]


def test_paper_comparison_names_the_scheme_that_ran():
    rows = A.add_variants(pd.DataFrame({"method": ["he", "he", "plaintext"],
                                        "method.scheme": ["bfv", "bfv", None],
                                        "precision": [0.5, 0.6, 0.7], "recall": [0.5, 0.6, 0.7],
                                        "auc": [0.8, 0.8, 0.9]}))
    assert "HE (BFV) — ours" in R.paper_rows(rows)["Method"].tolist()


def test_a_dataset_without_duration_is_named_alone_and_cited():
    assert A.setting_label("cdnow", None, None) == "cdnow"
    assert A.setting_label("cdnow", float("nan"), 2000) == "cdnow (2,000-row subsample)"
    assert A.setting_label("bank_full", False, None) == "bank_full (no duration)"
    assert "Fader" in A.DATA_CITES["cdnow"] and "Moro" in A.DATA_CITES["bank_full"]
