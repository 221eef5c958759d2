import numpy as np
import pytest

from xrayclass.io.tables import InputError, read_table
from xrayclass.stages.clustering import cluster_detections
from xrayclass.stages.crossmatch import cluster_agreement, swap_in_frozen


@pytest.fixture(scope="module")
def stage1(sample_csc_csv):
    clustered, _ = cluster_detections(read_table(sample_csc_csv))
    return clustered


@pytest.fixture(scope="module")
def frozen(crossmatch_sample):
    return read_table(crossmatch_sample)


def test_frozen_swap_in_keeps_rows_and_frozen_clusters(stage1, frozen):
    stage2 = swap_in_frozen(stage1, frozen)
    assert len(stage2) == len(stage1) == 1615
    assert (stage2["main_type"] == "NaN").sum() == frozen["main_type"].isna().sum() == 98
    np.testing.assert_array_equal(stage2["cluster"], frozen["cluster"])
    np.testing.assert_array_equal(stage2["prob_3"], frozen["prob_3"])
    assert {"main_id", "other_types", "angDist"} <= set(stage2.columns)
    assert stage2["name"].tolist() == stage1["name"].tolist()
    # The stage-1 columns are kept as they were.
    np.testing.assert_array_equal(stage2["var_ratio_b"], stage1["var_ratio_b"])


def test_our_clusters_on_request(stage1, frozen):
    stage2 = swap_in_frozen(stage1, frozen, clusters="ours")
    np.testing.assert_array_equal(stage2["cluster"], stage1["cluster"])


def test_row_count_mismatch_is_named(stage1, frozen):
    with pytest.raises(InputError, match=r"^has 1,614 rows but the stage-1 table has 1,615") as raised:
        swap_in_frozen(stage1, frozen.iloc[1:])
    assert raised.value.table == "frozen"


def test_the_caller_maps_the_table_to_its_file(stage1, frozen):
    from xrayclass.exceptions import input_files

    with pytest.raises(InputError, match=r"^frozen\.csv: has 1,614 rows but the stage-1 table has 1,615"):
        with input_files("s1.csv", stage1="s1.csv", frozen="frozen.csv"):
            swap_in_frozen(stage1, frozen.iloc[1:])
    with pytest.raises(InputError, match=r"^s1\.csv: missing required columns: obsid"):
        with input_files("s1.csv", stage1="s1.csv", frozen="frozen.csv"):
            swap_in_frozen(stage1.drop(columns="obsid"), frozen)


def test_name_mismatch_is_named_with_its_row(stage1, frozen):
    changed = frozen.copy()
    changed.loc[9, "name_1"] = "2CXO J000000.0+000000"
    with pytest.raises(InputError, match=r"1 rows differ, first at data row 10 \('2CXO J000000\.0\+000000'"):
        swap_in_frozen(stage1, changed)


def test_obsid_mismatch_and_reordering_are_named(stage1, frozen):
    changed = frozen.copy()
    changed.loc[0, "obsid"] = 1
    with pytest.raises(InputError, match="first at data row 1"):
        swap_in_frozen(stage1, changed)
    with pytest.raises(InputError, match="in another order"):
        swap_in_frozen(stage1, frozen.iloc[::-1].reset_index(drop=True))


def test_frozen_without_main_type(stage1, frozen):
    with pytest.raises(InputError, match=r"^missing required columns: main_type") as raised:
        swap_in_frozen(stage1, frozen.drop(columns="main_type"))
    assert raised.value.table == "frozen"


def test_cluster_agreement_ignores_label_permutations():
    assert cluster_agreement([0, 0, 1, 1, 2], [2, 2, 0, 0, 1]) == 1.0
    assert cluster_agreement([0, 0, 1, 1], [0, 1, 1, 1]) == 0.75


def test_blank_main_type_is_no_match(stage1, frozen):
    changed = frozen.copy()
    changed["main_type"] = changed["main_type"].astype(object)
    changed.loc[0, "main_type"] = "  "
    stage2 = swap_in_frozen(stage1, changed)
    assert stage2.loc[0, "main_type"] == "NaN"
    assert isinstance(stage2.loc[1, "main_type"], str)
