"""Own labels as references (xrayclass.core.labels), on small SYNTHETIC tables."""

import pandas as pd
import pytest

from xrayclass.core.labels import OTHER_TYPE, apply_labels, checked_labels, latest_labels
from xrayclass.io.labels import read_labels
from xrayclass.io.tables import InputError

HEADER = "name,class,comment,labeler,time\n"


def write(path, text):
    path.write_text(HEADER + text)
    return path


def test_latest_label_wins_across_files(tmp_path):
    first = write(tmp_path / "a.csv", "SRC A,HMXB,,x,2026-01-02T00:00:00Z\nSRC B,YSO,,x,2026-01-01T00:00:00Z\n")
    second = write(
        tmp_path / "b.csv",
        'SRC A,LMXB,later?,y,2026-01-01T00:00:00Z\nSRC B,other,"star, probably",y,2026-01-03T00:00:00Z\n',
    )
    labels, files = read_labels([first, second])
    assert labels.set_index("name")["class"].to_dict() == {"SRC A": "HMXB", "SRC B": "other"}
    assert labels.set_index("name").loc["SRC B", "comment"] == "star, probably"
    assert [f["rows"] for f in files] == [2, 2] and len(files[0]["sha256"]) == 64


@pytest.mark.parametrize(
    "text, message",
    [
        ("SRC A,Quasar,,x,2026-01-01\n", "line 2: unknown class 'Quasar'"),
        (",QSO,,x,2026-01-01\n", "line 2: empty source name"),
    ],
)
def test_bad_labels_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path / "labels.csv", text)
    with pytest.raises(InputError, match=message) as raised:
        read_labels([path])
    assert str(raised.value).startswith(f"{path}: line 2: ")
    # The science alone says the line, not a file it never saw.
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    with pytest.raises(InputError, match=f"^{message}"):
        checked_labels(table)


def test_equal_times_go_to_the_table_given_last():
    def table(rows):
        return checked_labels(pd.DataFrame(rows, columns=["name", "class", "comment", "labeler", "time"]))

    t1, t2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
    first = table([[" SRC A ", "HMXB", "", "x", t1], ["SRC B", "YSO", "", "x", t2]])
    second = table([["SRC A", "LMXB", "", "y", t1], ["SRC B", "QSO", "", "y", t1]])
    labels = latest_labels([first, second])
    assert labels["name"].tolist() == ["SRC A", "SRC B"]
    assert labels["class"].tolist() == ["LMXB", "YSO"]
    assert latest_labels([]).columns.tolist() == ["name", "class", "comment", "labeler", "time"]


def test_missing_column_is_named(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("name,class\nSRC A,QSO\n")
    with pytest.raises(InputError, match="missing label columns: comment, labeler, time"):
        read_labels([path])


def test_labels_override_simbad_types_and_are_counted(tmp_path):
    table = pd.DataFrame({"name": ["A", "A", "B", "C", "D"], "main_type": ["NaN", "X", "QSO", "AGN", "NaN"]})
    labels, _ = read_labels(
        [
            write(
                tmp_path / "l.csv",
                "".join(f"{row},x,2026-05-12\n" for row in ("A,HMXB,", "B,other,", "C,AGN,", "Z,YSO,")),
            )
        ]
    )
    relabeled, summary = apply_labels(table, labels)
    assert relabeled["main_type"].tolist() == ["HMXB", "HMXB", OTHER_TYPE, "AGN", "NaN"]
    assert (summary.sources_matched, summary.sources_unmatched, summary.detections_relabeled) == (3, 1, 4)
    assert (
        summary.new_references,
        summary.removed_references,
        summary.confirmed_references,
        summary.changed_references,
    ) == (2, 1, 1, 0)
    assert table["main_type"].tolist()[0] == "NaN"  # the input is not modified


def test_times_are_compared_as_instants_not_as_text(tmp_path):
    """An offset, a time without a zone (UTC) and the explorer's own form, in one contest per source.

    Compared as text, each source would go to the other file.
    """
    first = write(
        tmp_path / "a.csv",
        "SRC A,HMXB,,x,2026-05-12T12:30:00+02:00\n"  # 10:30 UTC
        "SRC B,YSO,,x,2026-05-12T09:00:00-05:00\n"  # 14:00 UTC
        "SRC C,AGN,,x,2026-05-12T12:00:00+02:00\n",  # 10:00 UTC
    )
    second = write(
        tmp_path / "b.csv",
        "SRC A,LMXB,,y,2026-05-12T11:00:00.000Z\n"  # the explorer's form (toISOString)
        "SRC B,QSO,,y,2026-05-12 12:30\n"  # no zone: UTC
        "SRC C,Seyfert_1,,y,2026-05-12T10:00:00Z\n",  # the same instant: the file given last
    )
    labels, _ = read_labels([first, second])
    assert labels.set_index("name")["class"].to_dict() == {"SRC A": "LMXB", "SRC B": "YSO", "SRC C": "Seyfert_1"}
    assert str(labels.set_index("name").loc["SRC B", "time"]) == "2026-05-12 14:00:00+00:00"


@pytest.mark.parametrize("value", ["yesterday", "05/12/2026", "", "now", "today", "2026-02-30", "NaT", "t1"])
def test_a_time_that_is_not_a_time_names_file_line_and_value(tmp_path, value):
    path = write(tmp_path / "labels.csv", f"SRC A,QSO,,x,2026-05-12T10:00:00Z\nSRC B,AGN,,x,{value}\n")
    with pytest.raises(InputError) as raised:
        read_labels([path])
    assert str(raised.value).startswith(f"{path}: line 3: time {value!r} is not an ISO 8601 date and time")
