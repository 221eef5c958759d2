from collections import Counter

import numpy as np
import pandas as pd
import pytest

from xrayclass.constants import CLASSES, UNCLASSIFIED
from xrayclass.io.tables import InputError
from xrayclass.stages.master_classification import format_mean_std, master_classification, vote


def published_mean_std(values):
    """The published pipeline's formatting, applied to one group (the reference)."""
    return f"{round(np.mean(values), 3)}±{round(np.std(values), 3)}"


def test_mean_std_strings_match_the_published_formatting():
    rng = np.random.default_rng(0)
    groups = [
        rng.dirichlet(np.ones(3) * a, size=n)[:, 0]
        for a, n in zip(rng.uniform(0.05, 3, 400), rng.integers(1, 30, 400), strict=False)
    ]
    groups += [np.array([0.0]), np.array([1.0, 1.0]), np.array([0.0405]), np.array([0.0005, 0.0015])]
    means = np.array([g.mean() for g in groups])
    stds = np.array([g.std() for g in groups])
    ours = format_mean_std(means, stds)
    assert list(ours) == [published_mean_std(g) for g in groups]


def test_mean_std_formatting_outside_the_unit_interval():
    assert list(format_mean_std([1.23456, -0.5, 0.25], [0.0, 2.0, 0.1])) == ["1.235±0.0", "-0.5±2.0", "0.25±0.1"]


def test_cohen_kappa_equals_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    from xrayclass.stages.master_classification import cohen_kappa

    rng = np.random.default_rng(2)
    first = rng.choice(list(CLASSES), size=1000, p=np.linspace(1, 2, len(CLASSES)) / np.linspace(1, 2, 10).sum())
    second = np.where(rng.uniform(size=1000) < 0.8, first, rng.choice(list(CLASSES), size=1000))
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second), rel=1e-12)


def make_detections(rows):
    """SYNTHETIC detection-level rows: (name, obsid, predicted, {class: probability})."""
    records = []
    for name, obsid, predicted, probabilities in rows:
        record = {"name": name, "obsid": obsid, "main_type": predicted, "ra": 1.0, "dec": 2.0}
        record.update({c: probabilities.get(c, 0.0) for c in CLASSES})
        records.append(record)
    return pd.DataFrame(records)


def test_hard_vote_tie_goes_to_the_class_met_first_in_obsid_order():
    detections = make_detections(
        [
            ("S", 20, "HMXB", {"HMXB": 0.6, "QSO": 0.4}),
            ("S", 10, "QSO", {"QSO": 0.6, "HMXB": 0.4}),
        ]
    )
    uniquely, _ambiguous, _ = master_classification(detections)
    # Sorted by obsid, QSO comes first: the hard vote is QSO; the means tie 0.5/0.5 and
    # the soft vote takes the first class in CLASSES order, QSO too.
    assert uniquely["master_class"].tolist() == ["QSO"]


def test_hard_vote_equals_the_published_counter_rule():
    """Counter(x).most_common(1) of the published code, on many random tie-rich sources."""
    rng = np.random.default_rng(1)
    names = np.repeat(np.arange(300), rng.integers(1, 8, 300)).astype(str).astype(object)
    names.sort(kind="stable")
    predicted = rng.choice(["QSO", "AGN", "HMXB"], size=len(names)).astype(object)
    votes = vote(names, predicted, rng.dirichlet(np.ones(len(CLASSES)), size=len(names)))
    expected = pd.Series(predicted).groupby(names, sort=True).agg(lambda x: Counter(x).most_common(1)[0][0])
    assert votes.hard.tolist() == expected.tolist()


def test_votes_hand_computed():
    detections = make_detections(
        [
            ("A", 1, "YSO", {"YSO": 0.9, "TTau*": 0.1}),
            ("A", 2, "YSO", {"YSO": 0.8, "TTau*": 0.2}),
            ("A", 3, "TTau*", {"YSO": 0.3, "TTau*": 0.7}),
            ("B", 5, "LMXB", {"LMXB": 0.4, "HMXB": 0.35, "XB": 0.25}),
            ("B", 6, "LMXB", {"LMXB": 0.4, "HMXB": 0.35, "XB": 0.25}),
            ("B", 7, "HMXB", {"LMXB": 0.05, "HMXB": 0.9, "XB": 0.05}),
            ("C", 9, "AGN", {"AGN": 1.0}),
        ]
    )
    uniquely, ambiguous, summary = master_classification(detections)
    assert uniquely["name"].tolist() == ["A", "C"]  # 3 detections first, then 1
    assert uniquely["master_class"].tolist() == ["YSO", "AGN"]
    assert uniquely["agg_master_class"].tolist() == ["YSO", "AGN"]
    a = uniquely.iloc[0]
    assert a["YSO"] == published_mean_std([0.9, 0.8, 0.3])
    assert a["detection_count"] == 3
    # B: hard vote LMXB (2 of 3), soft vote HMXB (mean 0.533 > 0.283).
    assert ambiguous[["name", "hard_master_class", "soft_master_class"]].values.tolist() == [["B", "LMXB", "HMXB"]]
    assert summary["sources"] == 3 and summary["uniquely_classified"] == 2 and summary["ambiguous"] == 1
    assert summary["detections_per_source"] == {"1": 1, "2": 0, "3-10": 2, ">10": 0}
    # Kappa over all sources counts C (one detection, agreeing with itself); over 2+ only A and B.
    from sklearn.metrics import cohen_kappa_score

    assert summary["cohen_kappa"] == pytest.approx(cohen_kappa_score(["YSO", "LMXB", "AGN"], ["YSO", "HMXB", "AGN"]))
    assert summary["sources_multiple_detections"] == 2
    assert summary["cohen_kappa_multiple_detections"] == pytest.approx(
        cohen_kappa_score(["YSO", "LMXB"], ["YSO", "HMXB"])
    )


def test_kappa_of_multiple_detections_is_none_when_undefined():
    from xrayclass.stages.master_classification import format_summary

    detections = make_detections([("A", 1, "YSO", {"YSO": 0.9, "TTau*": 0.1}), ("B", 2, "AGN", {"AGN": 1.0})])
    _, _, summary = master_classification(detections)
    assert summary["sources_multiple_detections"] == 0
    assert summary["cohen_kappa_multiple_detections"] is None
    assert "undefined sources with 2 or more detections" in format_summary(summary)


def test_first_detection_features_come_from_the_lowest_obsid():
    detections = make_detections(
        [
            ("A", 30, "AGN", {"AGN": 1.0}),
            ("A", 10, "AGN", {"AGN": 1.0}),
        ]
    ).assign(hard_hm=[0.3, 0.1])
    uniquely, _, _ = master_classification(detections)
    assert uniquely["hard_hm"].tolist() == [0.1]


def test_unclassified_detections_do_not_vote(caplog):
    detections = make_detections(
        [
            ("A", 1, "AGN", {"AGN": 1.0}),
            ("A", 2, UNCLASSIFIED, {}),
            ("B", 3, UNCLASSIFIED, {}),
        ]
    )
    uniquely, _ambiguous, summary = master_classification(detections)
    assert uniquely["name"].tolist() == ["A"] and uniquely["detection_count"].tolist() == [1]
    assert summary["detections_unclassified"] == 2 and summary["sources_unclassified"] == 1
    assert "do not vote" in caplog.text and "appear in neither table" in caplog.text


def test_vote_on_unsorted_input_equals_vote_on_sorted():
    detections = make_detections(
        [
            ("B", 2, "HMXB", {"HMXB": 1.0}),
            ("A", 1, "QSO", {"QSO": 1.0}),
            ("B", 1, "XB", {"XB": 1.0}),
        ]
    )
    first = master_classification(detections)
    second = master_classification(detections.iloc[::-1].reset_index(drop=True))
    pd.testing.assert_frame_equal(first[1], second[1])
    pd.testing.assert_frame_equal(first[0], second[0])


def test_missing_probability_columns_are_named():
    detections = make_detections([("A", 1, "AGN", {"AGN": 1.0})]).drop(columns=["XB", "YSO"])
    with pytest.raises(InputError, match=r"^missing required columns: XB, YSO"):
        master_classification(detections)


def test_missing_probabilities_are_an_error_not_silent_nan():
    detections = make_detections([("A", 1, "AGN", {"AGN": 1.0})])
    detections.loc[0, "QSO"] = np.nan
    with pytest.raises(InputError, match="missing class probabilities"):
        master_classification(detections)


def test_vote_array_api():
    votes = vote(
        np.array(["a", "a", "b"], dtype=object),
        np.array(["XB", "LMXB", "YSO"], dtype=object),
        np.eye(len(CLASSES))[[6, 5, 7]],
    )
    assert votes.hard.tolist() == ["XB", "YSO"]  # tie 1-1: XB met first
    assert votes.soft.tolist() == ["LMXB", "YSO"]  # tie 0.5/0.5: LMXB before XB in CLASSES
    assert votes.detection_count.tolist() == [2, 1]
