import json

import numpy as np
import pandas as pd
import pytest
import scipy.linalg

from xrayclass.constants import CLASSES, FEATURES, UNINFORMATIVE_TYPES
from xrayclass.core.features import prepare_features
from xrayclass.core.preprocessing import LogMinMaxScaler
from xrayclass.io.artifacts import read_classifier_model
from xrayclass.io.tables import InputError, read_table
from xrayclass.stages.classification import ClassificationConfig, detection_roles, run_classification


def published_method(table):
    """The published stage 3, re-implemented the direct way (per cluster, per class,
    the diagonal of the N x N Mahalanobis product, exp(-|d|) / sum), as the reference."""
    table = prepare_features(table.rename(columns={"name_1": "name"}))
    table = table.dropna(subset=list(FEATURES)).reset_index(drop=True)
    table["main_type"] = table["main_type"].fillna("NaN")
    X = pd.DataFrame(
        LogMinMaxScaler().fit(table[list(FEATURES)].to_numpy()).transform(table[list(FEATURES)].to_numpy()),
        columns=FEATURES,
    )
    rows = []
    for cluster in range(6):
        members = table["cluster"] == cluster
        unlabeled = members & (table["main_type"].isin(["NaN", *UNINFORMATIVE_TYPES]))
        distances = []
        for label in CLASSES:
            references = X[members & (table["main_type"] == label)]
            if len(references) < len(FEATURES):
                distances.append(np.full(unlabeled.sum(), np.inf))
                continue
            centered = X[unlabeled].to_numpy() - references.mean(axis=0).to_numpy()
            inverse = scipy.linalg.pinv(np.cov(references.to_numpy().T))
            distances.append(np.diag(centered @ inverse @ centered.T))
        d = np.column_stack(distances)
        with np.errstate(invalid="ignore"):
            p = np.exp(-np.abs(d)) / np.exp(-np.abs(d)).sum(axis=1, keepdims=True)
        rows.append(
            pd.DataFrame(p, columns=CLASSES).assign(
                name=table.loc[unlabeled, "name"].to_numpy(), obsid=table.loc[unlabeled, "obsid"].to_numpy()
            )
        )
    return pd.concat(rows).sort_values(["name", "obsid"], kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def classified(crossmatch_sample):
    table = read_table(crossmatch_sample)
    result, model = run_classification(table)
    return table, result, model


def test_equals_the_published_method_on_the_real_sample(classified):
    table, result, _ = classified
    reference = published_method(table)
    assert len(result) == len(reference)
    assert result["name"].tolist() == reference["name"].tolist()
    defined = ~reference[list(CLASSES)].isna().any(axis=1).to_numpy()
    # Where the published arithmetic is defined the probabilities agree to rounding.
    np.testing.assert_allclose(
        result.loc[defined, list(CLASSES)], reference.loc[defined, list(CLASSES)], rtol=1e-9, atol=1e-12
    )
    # Where it gives NaN (a cluster without any scorable class) we give zeros and say so.
    assert (result.loc[~defined, "main_type"] == "Unclassified").all()
    assert (result.loc[~defined, list(CLASSES)] == 0).all().all()
    assert (~defined).sum() == 2


def test_rows_are_the_unmatched_and_uninformative_detections(classified):
    table, result, _ = classified
    types = table["main_type"].fillna("NaN")
    expected = int(types.isin(["NaN", *UNINFORMATIVE_TYPES]).sum())
    assert len(result) == expected == 161
    assert set(result["simbad_main_type"]) <= {"NaN", *UNINFORMATIVE_TYPES}
    assert result[["name", "obsid"]].equals(result[["name", "obsid"]].sort_values(["name", "obsid"], kind="stable"))
    assert list(result.columns[:6]) == ["name", "obsid", "cluster", "ra", "dec", "main_type"]
    assert list(result.columns[6:16]) == list(CLASSES)
    assert list(result.columns[16:28]) == list(FEATURES)
    scored = result["main_type"] != "Unclassified"
    np.testing.assert_allclose(result.loc[scored, list(CLASSES)].sum(axis=1), 1.0)
    assert (result.loc[scored, "main_type"] == result.loc[scored, list(CLASSES)].idxmax(axis=1)).all()


def test_every_row_is_accounted_for_in_the_log(crossmatch_sample, caplog):
    caplog.set_level("INFO")
    run_classification(read_table(crossmatch_sample))
    text = caplog.text
    assert "1,615 detections read" in text
    assert "dropped 0 of 1,615" in text
    assert (
        "1,319 references" in text
        and "161 to classify (98 without a SIMBAD match, 63 of an uninformative type)" in text
    )
    assert "135 of other SIMBAD types left out" in text
    assert 1319 + 161 + 135 == 1615


def test_classifier_artifact_reproduces_the_probabilities(classified, tmp_path):
    _table, result, model = classified
    path = tmp_path / "classifier.json"
    path.write_text(json.dumps(model.to_dict()))
    loaded = read_classifier_model(path)
    probabilities = loaded.predict_proba(result, result["cluster"].to_numpy())
    np.testing.assert_array_equal(probabilities, result[list(CLASSES)].to_numpy())


def test_roles():
    roles = detection_roles(["QSO", "NaN", "X", "Galaxy", "TTau*", "**"])
    assert roles.tolist() == ["reference", "to_classify", "to_classify", "other_type", "reference", "to_classify"]


def test_missing_cluster_or_main_type_is_named(crossmatch_sample):
    table = read_table(crossmatch_sample)
    with pytest.raises(InputError, match="missing required columns: main_type"):
        run_classification(table.drop(columns="main_type"))
    with pytest.raises(InputError, match="missing required columns: cluster"):
        run_classification(table.drop(columns="cluster"))
    table.loc[4, "cluster"] = np.nan
    with pytest.raises(InputError, match="column 'cluster' is empty in 1 rows"):
        run_classification(table)


def test_a_cluster_without_any_reference_is_unclassified_not_nan(crossmatch_sample, caplog):
    table = read_table(crossmatch_sample)
    table.loc[table["cluster"] == 4, "main_type"] = None  # cluster 4 loses all its labels
    result, model = run_classification(table)
    in_cluster = result["cluster"] == 4
    assert in_cluster.sum() == (table["cluster"] == 4).sum()
    assert (result.loc[in_cluster, "main_type"] == "Unclassified").all()
    assert not result[list(CLASSES)].isna().any().any()
    assert model.references.reference_counts()[4] == dict.fromkeys(CLASSES, 0)
    assert "clusters 0, 4 cannot be classified" in caplog.text


def test_gaussian_likelihood_with_priors_is_saved_and_reloaded(crossmatch_sample, tmp_path):
    table = read_table(crossmatch_sample)
    result, model = run_classification(
        table, ClassificationConfig(likelihood="gaussian", priors="references", explain=False)
    )
    document = model.to_dict()
    assert (document["references"]["likelihood"], document["references"]["priors"]) == ("gaussian", "references")
    path = tmp_path / "classifier.json"
    path.write_text(json.dumps(document))
    loaded = read_classifier_model(path)
    np.testing.assert_array_equal(
        loaded.predict_proba(result, result["cluster"].to_numpy()), result[list(CLASSES)].to_numpy()
    )
    paper, _ = run_classification(table, ClassificationConfig(explain=False))
    assert not np.allclose(paper[list(CLASSES)].to_numpy(), result[list(CLASSES)].to_numpy())


def test_log_floor_is_stored_in_the_classifier_artifact(crossmatch_sample):
    table = read_table(crossmatch_sample)
    _, model = run_classification(table, ClassificationConfig(log_floor=1e-3, explain=False))
    document = model.to_dict()["preprocessing"]
    assert document["log_floor"] == 1e-3 and document["log_shift"]["var_ratio_b"] == 1e-3
    _, paper = run_classification(table, ClassificationConfig(explain=False))
    assert paper.to_dict()["preprocessing"]["log_floor"] is None


def test_roles_logged_from_the_counts_of_each_type(caplog):
    """SYNTHETIC types with ties among the left-out ones: the counts and their order as
    pandas' value_counts gives them, row by row."""
    from xrayclass.constants import NO_MATCH
    from xrayclass.stages.classification import OTHER_TYPE, roles_of_canonical

    rng = np.random.default_rng(2)
    counts = {"Star": 30, "Radio": 30, "EB*": 20, "Galaxy": 20, "Cl*": 20, "PN": 5, "HII": 5, "Em*": 5, "Be*": 5}
    counts |= {"QSO": 50, NO_MATCH: 40, "X": 10, "Unknown": 3, "YSO": 12}
    types = np.array(rng.permutation([kind for kind, n in counts.items() for _ in range(n)]), dtype=object)
    caplog.set_level("INFO")
    roles = roles_of_canonical(types, CLASSES, ("X", "Unknown"), log_them=True)
    left_out = pd.Series(types[roles == OTHER_TYPE]).value_counts().head(8)
    expected = ", ".join(f"{t} {n:,}" for t, n in left_out.items())
    assert f"most common left-out types: {expected}" in caplog.text
    n_reference = int(np.isin(types, CLASSES).sum())
    n_unmatched = int((types == NO_MATCH).sum())
    n_uninformative = int(np.isin(types, ["X", "Unknown"]).sum())
    assert (
        f"{n_reference:,} references of the 10 classes; {n_unmatched + n_uninformative:,} to classify "
        f"({n_unmatched:,} without a SIMBAD match, {n_uninformative:,} of an uninformative type); "
        f"{len(types) - n_reference - n_unmatched - n_uninformative:,} of other SIMBAD types left out"
    ) in caplog.text
