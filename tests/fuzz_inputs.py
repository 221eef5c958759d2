"""Hypothesis strategies for the fuzzed files of ``tests/test_fuzz.py`` (issue 22).

Feature-set TOML files (``--features``) and label files (``classification.py --labels``):
valid-looking documents built from the package's own vocabulary, then broken in the ways
a person or another program breaks them (wrong types, unknown names, empty or repeated
entries, deep or huge structures, other encodings, cut-off files, files that are not
files). Each strategy returns a description that ``write_*`` turns into files, so that a
failing example Hypothesis prints can be written again by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import tomllib
from pathlib import Path

import pandas as pd
from hypothesis import strategies as st

from xrayclass.constants import CLASSES
from xrayclass.core.featuresets import DERIVATIONS, KNOWN_FEATURES, builtin
from xrayclass.core.labels import LABEL_COLUMNS, OTHER

# -- TOML -----------------------------------------------------------------------------------
#
# tomllib reads TOML but the standard library cannot write it, and a fuzz needs to write
# what no writer would (a key twice, a value of any type): a small emitter of the
# subset used here (strings, numbers, booleans, lists, tables) is enough.


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_text(document: dict, repeat: str | None = None) -> str:
    """``document`` as TOML: scalars and lists first, then one ``[table]`` per dict.

    ``repeat`` names a top-level key written twice (invalid TOML that a hand edit makes).
    """
    lines, tables = [], []
    for key, value in document.items():
        if isinstance(value, dict):
            tables.append((key, value))
            continue
        lines.append(f"{json.dumps(str(key))} = {toml_value(value)}")
        if key == repeat:
            lines.append(lines[-1])
    for key, table in tables:
        lines.append(f"[{json.dumps(str(key))}]")
        for inner, value in table.items():
            lines.append(f"{json.dumps(str(inner))} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


# -- feature sets ---------------------------------------------------------------------------

PAPER_DOCUMENT = tomllib.loads(builtin("paper").read_text(encoding="utf-8"))

#: Values of a wrong type (or shape) for any field of a feature set.
HOSTILE_TOML_VALUES = [
    0,
    -1,
    2**63 - 1,
    1.5,
    math.nan,
    math.inf,
    True,
    "",
    "hard_hm",
    "Pérez-Díaz",
    [],
    [[]],
    [1, 2],
    ["hard_hm", 3],
    [["hard_hm"]],
    {},
    {"a": 1},
    {"hard_hm": "bb_kt"},
]
#: Names that look like features and are not (or are, in another spelling).
BAD_FEATURE_NAMES = ["hard_xx", "", " hard_hm", "HARD_HM", "hard_hm\u200f", "var_ratio_m", "ra", "../x", "é"]
#: Transforms the feature sets do not have.
UNKNOWN_KEYS = ["sqrt", "Log", "standard", "features2", "log ", "weights"]


@st.composite
def valid_feature_set(draw) -> dict:
    """A document that should pass validation: a few known features, derived columns as
    needed, random log/minmax choices and a split into two naive-Bayes categories."""
    features = draw(st.lists(st.sampled_from(KNOWN_FEATURES), min_size=2, max_size=len(KNOWN_FEATURES), unique=True))
    log = [f for f in features if draw(st.booleans())]
    minmax = [f for f in features if f not in log and draw(st.booleans())]
    cut = draw(st.integers(1, len(features) - 1))
    document = {
        "name": draw(st.sampled_from(["fuzz", "x", "Pérez-Díaz set"])),
        "description": draw(st.sampled_from(["", "a fuzzed set", "ünïcode ✓"])),
        "features": features,
        "log": log,
        "minmax": minmax,
        "derived": {f: list(DERIVATIONS[f]) for f in features if f in DERIVATIONS},
        "naive_bayes": {"spectrum": features[:cut], "variability": features[cut:]},
    }
    if not document["derived"]:
        del document["derived"]
    return document


def _paths(document: dict) -> list[tuple]:
    """The keys of a feature set, top-level and one level into its tables."""
    paths = []
    for key, value in document.items():
        paths.append((key,))
        if isinstance(value, dict):
            paths.extend((key, inner) for inner in value)
    return paths


@st.composite
def feature_set_edit(draw, document: dict) -> tuple:
    kind = draw(
        st.sampled_from(
            ["value", "value", "bad_name", "unknown_key", "delete", "duplicate_item", "empty", "repeat_key"]
        )
    )
    path = draw(st.sampled_from(_paths(document)))
    if kind == "value":
        return ("value", path, draw(st.sampled_from(HOSTILE_TOML_VALUES)))
    if kind == "bad_name":
        return ("bad_name", path, draw(st.sampled_from(BAD_FEATURE_NAMES)))
    if kind == "unknown_key":
        return ("unknown_key", path[:1], draw(st.sampled_from(UNKNOWN_KEYS)))
    return (kind, path, None)


def apply_feature_set_edit(document: dict, edit: tuple) -> tuple[dict, str | None]:
    """The edited document (a copy) and the key to write twice, if any."""
    document = json.loads(json.dumps(document))
    kind, path, value = edit
    parent = document
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict) or (kind != "unknown_key" and path[-1] not in parent):
        return document, None
    if kind == "repeat_key":
        return document, path[0]
    if kind == "value":
        parent[path[-1]] = value
    elif kind == "bad_name":
        if isinstance(parent[path[-1]], list):
            parent[path[-1]] = [*parent[path[-1]], value]
    elif kind == "unknown_key":
        # The features as an earlier edit left them (a list, or a value put in their place).
        features = document.get("features", [])
        document[value] = list(features)[:2] if isinstance(features, list) else features
    elif kind == "delete":
        del parent[path[-1]]
    elif kind == "duplicate_item":
        items = parent[path[-1]]
        if isinstance(items, list) and items:
            parent[path[-1]] = [*items, items[0]]
    elif kind == "empty":
        parent[path[-1]] = [] if isinstance(parent[path[-1]], list) else {}
    return document, None


#: Whole-file problems: how the text is encoded, cut, padded or replaced.
RAW_KINDS = [
    "utf-8",
    "utf-8",
    "utf-8",
    "latin-1",
    "utf-16",
    "bom",
    "nul",
    "truncate",
    "deep",
    "wide",
    "garbage",
    "empty",
]
#: Files that are not regular files (a FIFO with no writer blocks whoever opens it).
SPECIAL_FILES = ["missing", "directory", "fifo", "/dev/null"]


@st.composite
def feature_set_file(draw) -> dict:
    """How to write one ``--features`` argument (see :func:`write_feature_set`)."""
    if draw(st.integers(0, 19)) == 0:
        return {"special": draw(st.sampled_from(SPECIAL_FILES))}
    document = draw(st.one_of(valid_feature_set(), st.just(PAPER_DOCUMENT)))
    edits = draw(st.lists(feature_set_edit(document), max_size=3))
    return {
        "document": document,
        "edits": edits,
        "raw": draw(st.sampled_from(RAW_KINDS)),
        "size": draw(st.sampled_from([3, 64, 1000, 100_000])),
        "cut": draw(st.floats(0, 1)),
    }


def write_feature_set(spec: dict, directory: Path) -> Path:
    """Write the file ``spec`` describes in ``directory``; returns its path."""
    path = directory / "features.toml"
    special = spec.get("special")
    if special == "missing":
        return path
    if special == "directory":
        path.mkdir()
        return path
    if special == "fifo":
        os.mkfifo(path)
        return path
    if special:
        return Path(special)
    document, repeat = spec["document"], None
    for edit in spec["edits"]:
        document, repeat = apply_feature_set_edit(document, edit)
        if repeat:
            break
    text = toml_text(document, repeat)
    raw, size = spec["raw"], spec["size"]
    if raw == "latin-1":
        data = text.encode("latin-1", errors="replace")
    elif raw == "utf-16":
        data = text.encode("utf-16")
    elif raw == "bom":
        data = text.encode("utf-8-sig")
    elif raw == "nul":
        data = text.encode() + b"\x00"
    elif raw == "truncate":
        data = text.encode()[: int(len(text.encode()) * spec["cut"])]
    elif raw == "deep":  # nesting that a recursive reader follows to its stack's end
        data = (text + "deep = " + "[" * size + "]" * size + "\n").encode()
    elif raw == "wide":  # a long list (and a long file)
        data = (text + "wide = [" + ", ".join(['"hard_hm"'] * size) + "]\n").encode()
    elif raw == "garbage":
        data = bytes(range(256)) * max(1, size // 256)
    elif raw == "empty":
        data = b""
    else:
        data = text.encode()
    path.write_bytes(data)
    return path


# -- label files ----------------------------------------------------------------------------

LABEL_CLASSES = ["Other", " AGN ", "Foo", "qso", "", "Unclassified"]
HOSTILE_TEXT = [
    "",
    " ",
    '<img src=x onerror="alert(1)">',
    "=HYPERLINK(1)",
    "a,b",
    'say "hi"',
    "two\nlines",
    "\u202eevil",
    "Pérez",
    "\x00",
]
#: Times that are not ISO 8601 (or not valid dates): a label file carrying one is an error.
BAD_TIMES = ["yesterday", "06/12/2026", "2026-13-01", "2026-01-01T25:00:00", "1e9", "now", "2026-1-1", "12:00"]
_ZONES = [None, dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5))]


@st.composite
def label_time(draw, zoned: bool | None = None, hostile: bool = True) -> str:
    """A label time: mostly ISO 8601, close enough to others to collide; with a zone
    (``zoned`` True), without (False) or either (None); not a time at all one time in
    twenty if ``hostile``."""
    if hostile and draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(BAD_TIMES + [""]))
    moment = dt.datetime(2026, 1, 1) + dt.timedelta(hours=draw(st.integers(0, 48)))
    zones = {True: _ZONES[1:], False: _ZONES[:1], None: _ZONES}[zoned]
    zone = draw(st.sampled_from(zones))
    styles = ["iso", "space", "z", "micro"] + (["date"] if zone is None else [])
    style = draw(st.sampled_from(styles))
    if style == "date":
        return moment.date().isoformat()
    moment = moment.replace(tzinfo=zone)
    if style == "micro":
        moment = moment.replace(microsecond=draw(st.integers(0, 999_999)))
    text = moment.isoformat(sep=" " if style == "space" else "T")
    return text.replace("+00:00", "Z") if style == "z" else text


@st.composite
def label_row(draw, names: list[str], zoned: bool | None = None, hostile: bool = True) -> dict:
    """A row naming a source of the run with a known class (padded with blanks one time
    in ten); if ``hostile``, one name and one class in ten are hostile instead."""
    roll = draw(st.integers(0, 9))
    if hostile and roll == 0:
        name = draw(st.sampled_from(HOSTILE_TEXT))
    else:
        name = draw(st.sampled_from(names))
        name = f" {name} " if roll == 1 else name
    good_class = st.sampled_from([*CLASSES, OTHER])
    classes = st.one_of(*[good_class] * 9, st.sampled_from(LABEL_CLASSES)) if hostile else good_class
    return {
        "name": name,
        "class": draw(classes),
        "comment": draw(st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=8))),
        "labeler": draw(st.sampled_from(["me", "", "Zoë", "=1+1"])),
        "time": draw(label_time(zoned, hostile)),
    }


#: Whether the times of an example's files carry a zone: mostly all or none, so that
#: conflicting labels can be ordered (zoned and zone-less times compare only by a convention).
ZONED = [True, True, False, None]

#: Problems of a whole labels file.
LABEL_FILE_KINDS = ["clean"] * 6 + [
    "drop",
    "extra",
    "reorder",
    "twice",
    "latin-1",
    "utf-16",
    "bom",
    "truncate",
    "empty",
    "header",
]


@st.composite
def label_file(draw, names: list[str], zoned: bool | None = None, hostile: bool = True) -> dict:
    """How to write one labels file (see :func:`write_labels`). Not ``hostile``: a clean
    file of valid rows, at least two, for the rule of the latest label to decide."""
    return {
        "rows": draw(st.lists(label_row(names, zoned, hostile), min_size=0 if hostile else 2, max_size=6)),
        "kind": draw(st.sampled_from(LABEL_FILE_KINDS)) if hostile else "clean",
        "column": draw(st.sampled_from(LABEL_COLUMNS)),
        "cut": draw(st.floats(0, 1)),
    }


def write_labels(spec: dict, path: Path) -> Path:
    table = pd.DataFrame(spec["rows"], columns=list(LABEL_COLUMNS))
    kind, column = spec["kind"], spec["column"]
    if kind == "drop":
        table = table.drop(columns=[column])
    elif kind == "extra":
        table["extra"] = "x"
    elif kind == "reorder":
        table = table[list(reversed(table.columns))]
    elif kind == "twice":
        table = pd.concat([table, table[[column]]], axis=1)
    text = table.to_csv(index=False)
    if kind == "latin-1":
        data = text.encode("latin-1", errors="replace")
    elif kind == "utf-16":
        data = text.encode("utf-16")
    elif kind == "bom":
        data = text.encode("utf-8-sig")
    elif kind == "truncate":
        data = text.encode()[: int(len(text.encode()) * spec["cut"])]
    elif kind == "empty":
        data = b""
    elif kind == "header":
        data = text.splitlines(keepends=True)[0].encode()
    else:
        data = text.encode()
    path.write_bytes(data)
    return path


def parsed_time(text: str) -> dt.datetime | None:
    """``text`` as an ISO 8601 time (``datetime.fromisoformat``), else None."""
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def bad_times(files: list[dict]) -> list[str]:
    """The times of clean files that are written but are not ISO 8601: each an error."""
    return [
        row["time"]
        for spec in files
        if spec["kind"] == "clean"
        for row in spec["rows"]
        if row["time"] and parsed_time(row["time"]) is None
    ]


def expected_labels(files: list[dict]) -> pd.DataFrame | None:
    """The labels stage 3 must apply from clean files: per source, the label of the latest
    time (equal times: the file given last, then the row written last), by the time's
    value, not its text. None when the outcome is not fixed here: a file that is not
    clean, a time missing or not ISO 8601, or a source whose times mix zoned and
    zone-less ones (comparable only by a convention)."""
    if any(spec["kind"] != "clean" for spec in files):
        return None
    rows = [
        {**row, "name": row["name"].strip(), "order": (i, j), "when": parsed_time(row["time"])}
        for i, spec in enumerate(files)
        for j, row in enumerate(spec["rows"])
    ]
    if any(row["when"] is None for row in rows):
        return None
    winners: dict[str, dict] = {}
    for row in rows:
        zones = {r["when"].tzinfo is None for r in rows if r["name"] == row["name"]}
        if len(zones) > 1:
            return None
        best = winners.get(row["name"])
        if best is None or row["when"] >= best["when"]:
            winners[row["name"]] = row
    resolved = pd.DataFrame([{c: w[c] for c in LABEL_COLUMNS} for w in winners.values()], columns=list(LABEL_COLUMNS))
    return resolved.assign(time="2026-01-01T00:00:00+00:00")
