"""Write the HAND-MADE by-name CSC TAP answer ``csc_tap_source.vot`` (tests/test_classify_source.py).

Like every file of this directory (see README.md), it was NOT recorded from the live
service: it is the TAP result VOTable of ``make_service_fixtures.py`` (same 50 fields,
same format) for a query by source name, and every value in it is MADE UP. It holds
three detections of one invented source, ``2CXO J100000.0+020000``; the third has
null ``powlaw_gamma`` and ``bb_kt`` (and their limits), as a real detection without
spectral fits has, because the by-name query keeps such detections.

Run ``python tests/data/make_source_fixture.py`` to rewrite it (deterministic).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_service_fixtures import _csc_row, csc_votable  # noqa: E402

#: The made-up source of the fixture.
SOURCE_NAME = "2CXO J100000.0+020000"
#: Its detection without spectral fits.
NO_FIT_OBSID = 90003


def source_rows():
    rows = []
    for k in range(3):
        row = _csc_row(k)
        row.update(name=SOURCE_NAME, ra=150.0, dec=2.0)
        if row["obsid"] == NO_FIT_OBSID:
            row.update({column: None for column in ("powlaw_gamma", "powlaw_gamma_lolim", "powlaw_gamma_hilim",
                                                    "bb_kt", "bb_kt_lolim", "bb_kt_hilim")})
        rows.append(row)
    return rows


def main():
    path = HERE / "csc_tap_source.vot"
    path.write_text(csc_votable(source_rows()), encoding="utf-8")
    print("wrote", path)


if __name__ == "__main__":
    main()
