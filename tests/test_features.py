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


@pytest.mark.parametrize("seed", range(10))
def test_complete_rows_and_reasons_match_a_value_by_value_count(seed):
    """SYNTHETIC values with gaps, infinities, values beyond the physical ranges (and at
    their bounds) and subnormal ones in features and raw columns: each row and each
    reason as counted one value at a time."""
    from xrayclass.core.checks import PHYSICAL_RANGES, SMALLEST_NORMAL, subnormal_columns
    from xrayclass.core.featuresets import PAPER

    tiny_columns = subnormal_columns(PAPER)

    rng = np.random.default_rng(seed)
    table = prepare_features(synthetic_detections(40, seed=seed))
    raw = [c for c in table.columns if c.startswith("var_") and c not in FEATURES]
    for column in [*FEATURES, *raw]:
        low, high = PHYSICAL_RANGES.get(column, (-np.inf, np.inf))
        spoilers = [np.nan, np.inf, -np.inf, low, high, low - 1, high + 1, 5e-324, -1e-310]
        values = table[column].to_numpy(dtype="float64").copy()
        hit = rng.random(len(values)) < 0.08
        values[hit] = rng.choice(spoilers, int(hit.sum()))
        table[column] = values
    complete, reasons = complete_rows(table)

    expected = np.ones(len(table), dtype=bool)
    for column in [*FEATURES, *raw]:
        low, high = PHYSICAL_RANGES.get(column, (-np.inf, np.inf))
        counts = {"missing": 0, "not_finite": 0, "out_of_range": 0, "subnormal": 0}
        for k, value in enumerate(table[column]):
            if column in FEATURES and np.isnan(value):
                counts["missing"] += 1
                expected[k] = False
            elif column in FEATURES and np.isinf(value):
                counts["not_finite"] += 1
                expected[k] = False
            elif np.isfinite(value) and column in PHYSICAL_RANGES and not low <= value <= high:
                counts["out_of_range"] += 1
                expected[k] = False
            elif column in tiny_columns and value != 0 and abs(value) < SMALLEST_NORMAL:
                counts["subnormal"] += 1
                expected[k] = False
        assert reasons.loc[column].to_dict() == counts, column
    assert complete.tolist() == expected.tolist()
    assert not complete.all()


def test_a_log_feature_zero_everywhere_is_named_from_an_array_or_a_table():
    from xrayclass.core.checks import require_log_features_usable

    table = pd.DataFrame({"bb_kt": [0.0, 0.0], "powlaw_gamma": [0.0, 1.0]})
    for features in (table, table.to_numpy()):
        with pytest.raises(InputError, match=r"^bb_kt is zero for every usable detection"):
            require_log_features_usable(features, ["bb_kt", "powlaw_gamma"], ["powlaw_gamma", "bb_kt"])
        require_log_features_usable(features, ["bb_kt", "powlaw_gamma"], ["powlaw_gamma"])
