import numpy as np
import pandas as pd
import pytest
from conftest import synthetic_detections

from xrayclass.constants import FEATURES
from xrayclass.core.features import complete_rows, derive_features, describe_dropped, prepare_features
from xrayclass.io.tables import InputError


def test_derived_features_hand_computed():
    raw = pd.DataFrame(
        {
            "var_sigma_b": [0.2],
            "var_mean_b": [0.5],
            "var_sigma_h": [0.03],
            "var_mean_h": [0.1],
            "var_sigma_s": [1.0],
            "var_mean_s": [4.0],
            "var_min_b": [0.3],
            "var_max_b": [0.9],
        }
    )
    derived = derive_features(raw)
    assert derived["var_ratio_b"].iloc[0] == pytest.approx(0.4)
    assert derived["var_ratio_h"].iloc[0] == pytest.approx(0.3)
    assert derived["var_ratio_s"].iloc[0] == pytest.approx(0.25)
    # ((0.9 + 0.3) / 2) / 0.5
    assert derived["var_newq_b"].iloc[0] == pytest.approx(1.2)


def test_zero_mean_gives_non_finite_feature_that_counts_as_missing():
    table = prepare_features(synthetic_detections(6))
    table.loc[1, "var_mean_h"] = 0.0
    table = derive_features(table)
    table.loc[3, "bb_kt"] = np.nan
    complete, reasons = complete_rows(table)
    assert complete.tolist() == [True, False, True, False, True, True]
    assert reasons.loc["var_ratio_h", "not_finite"] == 1
    assert reasons.loc["bb_kt", "missing"] == 1
    message = describe_dropped(reasons, 2, 6)
    assert "dropped 2 of 6" in message and "bb_kt missing in 1" in message
    assert "var_ratio_h not finite in 1" in message


def test_prepare_features_names_missing_raw_columns():
    table = synthetic_detections(5).drop(columns=["var_sigma_h", "bb_kt"])
    with pytest.raises(InputError, match=r"^missing required columns: bb_kt, var_sigma_h"):
        prepare_features(table)


def test_prepare_features_accepts_precomputed_features_without_raw_columns():
    table = prepare_features(synthetic_detections(5))
    only_features = table[list(FEATURES)]
    assert prepare_features(only_features).equals(only_features)


def test_prepare_features_rejects_text_in_a_feature():
    table = synthetic_detections(5)
    table["hard_hm"] = table["hard_hm"].astype(object)
    table.loc[2, "hard_hm"] = "abc"
    with pytest.raises(InputError, match=r"^column 'hard_hm' has non-numeric values .*'abc' in data row 3"):
        prepare_features(table)
