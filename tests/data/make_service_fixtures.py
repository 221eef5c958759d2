"""Write the HAND-MADE service answers in this directory (see README.md).

Nothing here was recorded from a live service: the files follow the formats the
services send (TAP VOTable results with QUERY_STATUS, UWS 1.1 job documents, the
CDS X-Match VOTable answer and its table list) and every value in them is MADE UP.
Run ``python tests/data/make_service_fixtures.py`` to rewrite them; the output is
deterministic and the files are committed.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent

CSC_URL = "https://cda.cfa.harvard.edu/csc2tap"
JOB_ID = "FIXTUREJOB1"
JOB_URL = f"{CSC_URL}/async/{JOB_ID}"

MADE_UP = ("HAND-MADE TEST FIXTURE in the format of the {service}; not recorded from the "
           "live service. Every value is MADE UP; names and numbers belong to no real source.")

# -- CSC TAP ------------------------------------------------------------------------------

BANDS = "bhms"
BAND_TEXT = {"b": "ACIS broad (0.5-7.0 keV) energy band", "h": "ACIS hard (2.0-7.0 keV) energy band",
             "m": "ACIS medium (1.2-2.0 keV) energy band", "s": "ACIS soft (0.5-1.2 keV) energy band"}
VAR_TEXT = {"mean": "mean value", "sigma": "standard deviation", "min": "minimum value", "max": "maximum value"}

#: The FIELDs of a CSC TAP result for the paper's 50 columns: (name, datatype, unit,
#: extra attributes, description). Names, datatypes, units, ucd and precision follow the
#: real CSC VOTable ../shared/reference/example_source.vot (FIELD ID="colN" name="...")
#: for the 24 columns it has; the descriptions of the others are written here.
CSC_FIELDS = [
    ("name", "char", None, ' arraysize="*" width="22"', "Source name in the format '2CXO Jhhmmss.s{+|-}ddmmss[X]'"),
    ("obsid", "int", None, ' width="5"', "Observation identifier"),
    ("region_id", "int", None, "", "Source region identifier"),
    ("theta", "double", "arcmin", "", "Off-axis angle"),
    ("ra", "double", None, ' ucd="pos.eq.ra;meta.main"', "Source position, ICRS right ascension"),
    ("dec", "double", None, ' ucd="pos.eq.dec;meta.main"', "Source position, ICRS declination"),
    ("significance", "double", None, ' precision="F2"',
     "Highest flux significance (S/N) across all stacked observations and energy bands"),
    ("likelihood", "double", None, "", "Highest detection likelihood across all stacked observations and energy bands"),
    ("src_area_b", "double", None, "", "Area of the source region, broad band"),
    ("flux_aper_b", "double", "erg.s**-1.cm**-2", "", "Aperture-corrected energy flux, broad band"),
    ("hard_hm", "double", None, ' precision="F4"',
     "ACIS hard (2.0-7.0 keV) - medium (1.2-2.0 keV) energy band photon flux hardness ratio"),
    ("hard_hs", "double", None, ' precision="F4"',
     "ACIS hard (2.0-7.0 keV) - soft (0.5-1.2 keV) energy band photon flux hardness ratio"),
    ("hard_ms", "double", None, ' precision="F4"',
     "ACIS medium (1.2-2.0 keV) - soft (0.5-1.2 keV) energy band photon flux hardness ratio"),
    ("powlaw_gamma", "double", None, ' precision="F3"',
     "Photon index, defined as F_E ~ E^(-Gamma), of the best fitting  absorbed power-law model spectrum "
     "to the source region aperture PI spectrum"),
    ("powlaw_gamma_lolim", "double", None, "", "Photon index, lower limit"),
    ("powlaw_gamma_hilim", "double", None, "", "Photon index, upper limit"),
    ("bb_kt", "double", "keV", ' precision="E4"',
     "Temperature (kT) of the best fitting  absorbed black body model spectrum to the source region "
     "aperture PI spectrum"),
    ("bb_kt_lolim", "double", "keV", "", "Black-body temperature, lower limit"),
    ("bb_kt_hilim", "double", "keV", "", "Black-body temperature, upper limit"),
    *[(f"var_{q}_{band}", "double", None if q == "prob" else "count/s",
       ' precision="F3"' if q == "prob" else ' precision="E4"',
       f"Intra-observation Gregory-Loredo variability probability; {BAND_TEXT[band]}" if q == "prob" else
       f"Flux variability {VAR_TEXT[q]}, calculated from an optimally-binned light curve; {BAND_TEXT[band]}")
      for band in BANDS for q in ("prob", "sigma", "mean", "min", "max")],
    *[(f"ks_prob_{band}", "double", None, "", f"Kolmogorov-Smirnov variability probability; {BAND_TEXT[band]}")
      for band in BANDS],
    *[(f"kp_prob_{band}", "double", None, "", f"Kuiper variability probability; {BAND_TEXT[band]}")
      for band in BANDS],
    ("gti_start", "double", "s", "", "Start of the good time intervals"),
    ("gti_stop", "double", "s", "", "End of the good time intervals"),
    ("gti_elapse", "double", "s", "", "Elapsed time of the good time intervals"),
]


def _csc_row(k):
    """Row k of the made-up CSC result: plausible magnitudes, invented values."""
    values = {
        "name": f"2CXO J10000{k}.0+0200{k}0",
        "obsid": 90001 + k,
        "region_id": 11 + k,
        "theta": 1.5 + k,
        "ra": 150.0 + k / 100,
        "dec": 2.0 + k / 100,
        "significance": 12.5 + k,
        "likelihood": 250.0 + 10 * k,
        "src_area_b": 40.0 + k,
        "flux_aper_b": f"{1.5 + k}E-14",
        "hard_hm": -0.25 + 0.1 * k,
        "hard_hs": -0.5 + 0.1 * k,
        "hard_ms": -0.3 + 0.1 * k,
        "powlaw_gamma": 1.8 + 0.1 * k,
        "powlaw_gamma_lolim": 1.6 + 0.1 * k,
        "powlaw_gamma_hilim": 2.0 + 0.1 * k,
        "bb_kt": 0.4 + 0.1 * k,
        "bb_kt_lolim": 0.3 + 0.1 * k,
        "bb_kt_hilim": 0.5 + 0.1 * k,
        "gti_start": 500000000.0 + 1000 * k,
        "gti_stop": 500020000.0 + 1000 * k,
        "gti_elapse": 20000.0,
    }
    for j, band in enumerate(BANDS):
        mean = 0.01 * (k + 1) * (j + 1)
        values.update({
            f"var_prob_{band}": 0.1 * (k + 1), f"var_sigma_{band}": mean / 10,
            f"var_mean_{band}": mean, f"var_min_{band}": mean * 0.8, f"var_max_{band}": mean * 1.2,
            f"ks_prob_{band}": 0.2 * (k + 1), f"kp_prob_{band}": 0.15 * (k + 1),
        })
    if k == 1:
        values["var_prob_m"] = None  # a null, as the service writes it: an empty cell
    return values


def _cell(value):
    if value is None:
        return "<TD></TD>"
    if isinstance(value, float):
        return f"<TD>{value:.10g}</TD>"
    return f"<TD>{value}</TD>"


def csc_votable(rows, status="OK", status_text=None, trailing_status=None):
    fields = []
    for n, (name, datatype, unit, extra, description) in enumerate(CSC_FIELDS):
        # ID="colN" and name="...", as the CSC writes them (readers must use the name),
        # attributes in the CSC's (alphabetical) order
        pairs = [f'ID="col{n}"', f'datatype="{datatype}"', f'name="{name}"', *extra.split()]
        if unit:
            pairs.append(f'unit="{unit}"')
        attributes = " ".join(sorted(pairs))
        null = "\n<VALUES null='-2147483648'/>" if datatype == "int" else ""
        fields.append(f"<FIELD {attributes}>\n<DESCRIPTION>{description}</DESCRIPTION>{null}\n</FIELD>")
    body = "\n".join("<TR>" + "".join(_cell(row[name]) for name, *_ in CSC_FIELDS) + "</TR>" for row in rows)
    status_info = f'<INFO name="QUERY_STATUS" value="{status}"/>' if status_text is None else (
        f'<INFO name="QUERY_STATUS" value="{status}">{status_text}</INFO>')
    trailer = f'\n<INFO name="QUERY_STATUS" value="{trailing_status}"/>' if trailing_status else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- {MADE_UP.format(service="Chandra Source Catalog TAP service (" + CSC_URL + ")")} -->
<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<RESOURCE type="results">
{status_info}
<INFO name="PROVIDER" value="HAND-MADE FIXTURE"/>
<TABLE name="result">
{chr(10).join(fields)}
<DATA>
<TABLEDATA>
{body}
</TABLEDATA>
</DATA>
</TABLE>{trailer}
</RESOURCE>
</VOTABLE>
"""


def csc_error_votable(message):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- {MADE_UP.format(service="Chandra Source Catalog TAP service error answer")} -->
<VOTABLE version="1.3" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results">
<INFO name="QUERY_STATUS" value="ERROR">{message}</INFO>
</RESOURCE>
</VOTABLE>
"""


#: Made-up rows of the cone tests (tests/test_csc_tap.py), as (name, ra, dec): a fake
#: service answers a cone's RA/Dec box with those of them inside the box, and the client
#: must keep exactly those within the radius. The names say where each row lies for the
#: cone of the test (the test computes the separations itself; the names only document).
#: Across RA 0/360: the cone (359.95, +10) with a radius of 6 arcmin.
CONE_WRAP_ROWS = [
    ("2CXO J235948.0+100000 IN", 359.95, 10.0),
    ("2CXO J000004.8+100000 IN_ACROSS_0", 0.02, 10.0),
    ("2CXO J235926.4+100000 IN_WEST", 359.86, 10.0),
    ("2CXO J000012.0+100000 IN_EDGE", 0.05, 10.0),
    ("2CXO J000009.6+100448 BOX_CORNER_OUT", 0.04, 10.08),
    ("2CXO J235928.8+095530 BOX_CORNER_OUT", 359.87, 9.925),
    ("2CXO J000048.0+100000 OUTSIDE_BOX", 0.2, 10.0),
    ("2CXO J120000.0+100000 OUTSIDE_BOX", 180.0, 10.0),
    ("2CXO J235948.0+101200 OUTSIDE_BOX", 359.95, 10.2),
]
#: Around the north pole: the cone (45, +89.95) with a radius of 6 arcmin, whose cap
#: contains the pole (0.05 deg away), so the box is every RA above dec 89.85.
CONE_POLE_ROWS = [
    ("2CXO J030000.0+895700 IN", 45.0, 89.95),
    ("2CXO J150000.0+895812 IN_ACROSS_POLE", 225.0, 89.97),
    ("2CXO J030000.0+895136 IN_SOUTH_EDGE", 45.0, 89.86),
    ("2CXO J090000.0+895700 IN_SIDE", 135.0, 89.95),
    ("2CXO J150000.0+895548 BOX_OUT", 225.0, 89.93),
    ("2CXO J210000.0+895200 BOX_OUT", 315.0, 89.8667),
    ("2CXO J030000.0+893000 OUTSIDE_BOX", 45.0, 89.5),
    ("2CXO J150000.0+800000 OUTSIDE_BOX", 225.0, 80.0),
]


def cone_rows(rows):
    result = []
    for k, (name, ra, dec) in enumerate(rows):
        row = _csc_row(k % 3)
        row.update(name=name, obsid=91001 + k, ra=ra, dec=dec)
        result.append(row)
    return result


def uws_job(phase, results=False, error=None):
    result = (f'\n  <uws:results>\n    <uws:result id="result" xlink:href="{JOB_URL}/results/result"/>\n'
              "  </uws:results>") if results else "\n  <uws:results/>"
    summary = (f'\n  <uws:errorSummary type="fatal" hasDetail="false">\n    <uws:message>{error}</uws:message>\n'
               "  </uws:errorSummary>") if error else ""
    started = "" if phase == "PENDING" else "\n  <uws:startTime>2024-01-01T00:00:05Z</uws:startTime>"
    ended = "\n  <uws:endTime>2024-01-01T00:01:00Z</uws:endTime>" if phase in ("COMPLETED", "ERROR") else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- {MADE_UP.format(service="UWS 1.1 job document of a TAP service (phase " + phase + ")")} -->
<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1">
  <uws:jobId>{JOB_ID}</uws:jobId>
  <uws:runId xsi:nil="true"/>
  <uws:ownerId xsi:nil="true"/>
  <uws:phase>{phase}</uws:phase>
  <uws:quote xsi:nil="true"/>
  <uws:creationTime>2024-01-01T00:00:00Z</uws:creationTime>{started}{ended}
  <uws:executionDuration>3600</uws:executionDuration>
  <uws:destruction>2024-01-08T00:00:00Z</uws:destruction>
  <uws:parameters>
    <uws:parameter id="REQUEST">doQuery</uws:parameter>
    <uws:parameter id="LANG">ADQL</uws:parameter>
    <uws:parameter id="MAXREC">2000000</uws:parameter>
    <uws:parameter id="QUERY">SELECT DISTINCT m.name FROM csc2.master_source m</uws:parameter>
  </uws:parameters>{result}{summary}
</uws:job>
"""


# -- CDS X-Match ----------------------------------------------------------------------------

#: The five uploaded rows of the X-Match tests: (row_index, csc_ra, csc_dec).
XMATCH_UPLOAD = [(0, 150.1, 2.2), (1, 150.2, 2.3), (2, 150.3, 2.4), (3, 210.5, -30.1), (4, 210.6, -30.2)]

SIMBAD_FIELDS = [
    ("main_id", "char", None), ("ra", "double", "deg"), ("dec", "double", "deg"),
    ("coo_err_maj", "float", "mas"), ("coo_err_min", "float", "mas"), ("coo_err_angle", "short", "deg"),
    ("nbref", "int", None), ("ra_sexa", "char", None), ("dec_sexa", "char", None),
    ("main_type", "char", None), ("otype", "char", None), ("other_types", "char", None),
    ("radvel", "double", "km.s**-1"),
    ("redshift", "double", None), ("sp_type", "char", None), ("morph_type", "char", None),
    ("plx", "double", "mas"), ("pmra", "double", "mas.yr**-1"), ("pmdec", "double", "mas.yr**-1"),
    ("size_maj", "double", "arcmin"), ("size_min", "double", "arcmin"), ("size_angle", "short", "deg"),
    *[(band, "double", "mag") for band in ("B", "V", "R", "J", "H", "K", "u", "g", "r", "i", "z")],
]

#: (angDist, row_index, main_id, main_type, otype, other_types): several candidates for
#: rows 0 and 3, one for row 1, none for rows 2 and 4; deliberately not sorted by
#: distance. main_type is SIMBAD's label as it reads TODAY (after the 2022-2023 revision:
#: Seyfert1, XrayBin, TTauri*, HighMassXBin where the August-2022 crossmatch had
#: Seyfert_1, XB, TTau*, HMXB), otype the short code of the same type, other_types short
#: codes joined by '|' (as in the real 2021 sample's SIMBAD columns).
XMATCH_CANDIDATES = [
    (0.812, 0, "FAKE OBJ A2", "Star", "*", "*|X"),
    (0.254, 0, "FAKE OBJ A1", "QSO", "QSO", "QSO|X|G"),
    (0.431, 1, "FAKE OBJ B1", "Seyfert1", "Sy1", "Sy1|AGN|X|G"),
    (0.950, 3, "FAKE OBJ D3", "HighMassXBin", "HXB", "HXB|XB*|X"),
    (0.120, 3, "FAKE OBJ D1", "TTauri*", "TT*", "TT*|Y*O|X|IR"),
    (0.600, 3, "FAKE OBJ D2", "XrayBin", "XB*", "XB*|X"),
]


def _simbad_cells(k, main_id, main_type, otype, other_types, ra, dec):
    values = {
        "main_id": main_id, "ra": ra + 0.00005 * (k + 1), "dec": dec - 0.00004 * (k + 1),
        "coo_err_maj": 0.5, "coo_err_min": 0.4, "coo_err_angle": 90, "nbref": 3 + k,
        "ra_sexa": f"10 00 0{k}.0", "dec_sexa": f"+02 0{k} 00", "main_type": main_type,
        "otype": otype, "other_types": other_types, "radvel": None,
        "redshift": 0.5 if otype in ("QSO", "Sy1") else None,
        "sp_type": None, "morph_type": None, "plx": None, "pmra": None, "pmdec": None,
        "size_maj": None, "size_min": None, "size_angle": None,
        "B": 19.5 + 0.1 * k, "V": 19.0 + 0.1 * k, "R": None, "J": None, "H": None, "K": None,
        "u": None, "g": 19.2 + 0.1 * k, "r": 18.9 + 0.1 * k, "i": None, "z": None,
    }
    return "".join(_cell(values[name]) for name, *_ in SIMBAD_FIELDS)


def xmatch_votable(candidates):
    positions = {row: (ra, dec) for row, ra, dec in XMATCH_UPLOAD}
    fields = ['<FIELD name="angDist" datatype="double" unit="arcsec" ucd="pos.angDistance"/>',
              '<FIELD name="row_index" datatype="long"/>',
              '<FIELD name="csc_ra" datatype="double"/>',
              '<FIELD name="csc_dec" datatype="double"/>']
    for name, datatype, unit in SIMBAD_FIELDS:
        attributes = f'name="{name}" datatype="{datatype}"'
        if datatype == "char":
            attributes += ' arraysize="*"'
        if unit:
            attributes += f' unit="{unit}"'
        fields.append(f"<FIELD {attributes}/>")
    rows = []
    for k, (distance, row, main_id, main_type, otype, other_types) in enumerate(candidates):
        ra, dec = positions[row]
        rows.append(f"<TR><TD>{distance}</TD><TD>{row}</TD><TD>{ra}</TD><TD>{dec}</TD>"
                    + _simbad_cells(k, main_id, main_type, otype, other_types, ra, dec) + "</TR>")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- {MADE_UP.format(service="CDS X-Match answer (cat2=simbad, RESPONSEFORMAT=votable): angDist, the uploaded columns, then SIMBAD's")} -->
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<RESOURCE type="results">
<INFO name="QUERY_STATUS" value="OK"/>
<TABLE>
{chr(10).join(fields)}
<DATA>
<TABLEDATA>
{chr(10).join(rows)}
</TABLEDATA>
</DATA>
</TABLE>
</RESOURCE>
</VOTABLE>
"""


def xmatch_error_votable(message):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- {MADE_UP.format(service="CDS X-Match error answer")} -->
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results">
<INFO ID="QUERY_STATUS" name="QUERY_STATUS" value="ERROR">{message}</INFO>
</RESOURCE>
</VOTABLE>
"""


HTML_503 = """<!DOCTYPE html>
<!-- HAND-MADE TEST FIXTURE: a generic proxy error page, as a service behind a proxy may send. -->
<html><head><title>503 Service Unavailable</title></head>
<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>
"""

TABLE_LIST = """simbad
I/239/hip_main
II/246/out
II/311/wise
"""


def main():
    rows = [_csc_row(k) for k in range(3)]
    files = {
        "csc_tap_result.vot": csc_votable(rows),
        "csc_tap_empty.vot": csc_votable([]),
        "csc_tap_cone_wrap.vot": csc_votable(cone_rows(CONE_WRAP_ROWS)),
        "csc_tap_cone_pole.vot": csc_votable(cone_rows(CONE_POLE_ROWS)),
        "csc_tap_overflow.vot": csc_votable(rows, status="OK", trailing_status="OVERFLOW"),
        "csc_tap_query_error.vot": csc_error_votable(
            "Query error: column o.no_such_column not found (made-up message)"),
        "uws_job_pending.xml": uws_job("PENDING"),
        "uws_job_executing.xml": uws_job("EXECUTING"),
        "uws_job_completed.xml": uws_job("COMPLETED", results=True),
        "uws_job_error.xml": uws_job("ERROR", error="Query error: table csc2.no_such_table not found (made-up message)"),
        "xmatch_tables.txt": TABLE_LIST,
        "xmatch_simbad.vot": xmatch_votable(XMATCH_CANDIDATES),
        "xmatch_simbad_empty.vot": xmatch_votable([]),
        "xmatch_error.vot": xmatch_error_votable("Internal error while processing the job (made-up message)"),
        "http_503.html": HTML_503,
    }
    for name, text in files.items():
        (HERE / name).write_text(text, encoding="utf-8")
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
