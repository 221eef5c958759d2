"""The method's constants, defined once.

Every list here is the published pipeline's, in its order; order matters because
it fixes the feature-space axes, the probability columns and how ties are broken
(the first class in ``CLASSES`` wins a tie).
"""

import numpy as np

#: The package's version (``xrayclass.__version__``), recorded in every artifact it writes.
VERSION = "0.1.0"

__all__ = [
    "AGGREGATE_CLASS",
    "AGGREGATE_CLASSES",
    "CLASSES",
    "CLUSTER",
    "COLUMN_UNITS",
    "FEATURES",
    "LOCATION_FEATURE",
    "LOG_FEATURES",
    "MAIN_TYPE",
    "MINMAX_FEATURES",
    "NAME",
    "NAME_ALIASES",
    "NO_MATCH",
    "N_COMPONENTS",
    "OBSID",
    "OUTLIER_PERCENTILES",
    "RANDOM_STATE",
    "RAW_FEATURE_COLUMNS",
    "SPECTRUM_FEATURES",
    "UNCLASSIFIED",
    "UNINFORMATIVE_TYPES",
    "VARIABILITY_FEATURES",
    "VARIABILITY_RATIO_BANDS",
    "VERSION",
]

#: The 12 X-ray features of a detection, in the order of the feature space.
FEATURES = (
    "hard_hm",
    "hard_hs",
    "hard_ms",
    "powlaw_gamma",
    "bb_kt",
    "var_prob_b",
    "var_ratio_b",
    "var_prob_h",
    "var_ratio_h",
    "var_prob_s",
    "var_ratio_s",
    "var_newq_b",
)

#: Features with heavy right tails: log(x + smallest non-zero x / 10), then MinMax.
LOG_FEATURES = ("bb_kt", "var_ratio_h", "var_ratio_b", "var_ratio_s", "var_newq_b")

#: Features rescaled to [0, 1] without a log. The rest (hardness ratios in [-1, 1],
#: variability probabilities in [0, 1]) are used as they are.
MINMAX_FEATURES = ("powlaw_gamma",)

#: Bands with a variability ratio var_sigma / var_mean.
VARIABILITY_RATIO_BANDS = ("b", "h", "s")

#: Raw CSC columns the derived features are computed from.
RAW_FEATURE_COLUMNS = (
    *("hard_hm", "hard_hs", "hard_ms", "powlaw_gamma", "bb_kt", "var_prob_b", "var_prob_h", "var_prob_s"),
    *(f"var_{kind}_{band}" for band in VARIABILITY_RATIO_BANDS for kind in ("sigma", "mean")),
    *("var_min_b", "var_max_b"),
)

#: The unit each column is read in, as astropy writes it (``""``: a pure number). An input
#: column with another unit is converted where astropy can and refused where it cannot;
#: a column without a unit is taken as it is.
COLUMN_UNITS = {
    "ra": "deg",
    "dec": "deg",
    "hard_hm": "",
    "hard_hs": "",
    "hard_ms": "",
    "powlaw_gamma": "",
    "bb_kt": "keV",
    "var_prob_b": "",
    "var_prob_h": "",
    "var_prob_s": "",
    # Count rates: the features are their ratios, so only a unit of another kind is wrong
    # (ct/ks and ct/s mixed would change the ratios: they are made one).
    **{f"var_{kind}_{band}": "ct / s" for kind in ("sigma", "mean") for band in ("b", "h", "s")},
    "var_min_b": "ct / s",
    "var_max_b": "ct / s",
}

#: The ten classes a detection can be given (SIMBAD otypes), in the published order.
CLASSES = ("QSO", "AGN", "Seyfert_1", "Seyfert_2", "HMXB", "LMXB", "XB", "YSO", "TTau*", "Orion_V*")

#: SIMBAD types that say too little about the physical class: detections with these
#: types are classified like unmatched ones, never used as references.
UNINFORMATIVE_TYPES = ("Star", "X", "Radio", "IR", "Blue", "UV", "gamma", "PartofG", "**")

#: The value of ``main_type`` for a detection without a SIMBAD match. The published
#: code fills missing types with this string, and the published tables depend on it.
NO_MATCH = "NaN"

#: Predicted class of a detection whose cluster has no class with enough references:
#: its ten probabilities are all zero (the published code would produce NaN).
UNCLASSIFIED = "Unclassified"

#: Aggregated classes of the paper: each class maps to one of AGN, Seyfert, XB, YSO.
AGGREGATE_CLASS = {
    "QSO": "AGN",
    "AGN": "AGN",
    "Seyfert_1": "Seyfert",
    "Seyfert_2": "Seyfert",
    "HMXB": "XB",
    "LMXB": "XB",
    "XB": "XB",
    "YSO": "YSO",
    "TTau*": "YSO",
    "Orion_V*": "YSO",
}
AGGREGATE_CLASSES = ("AGN", "Seyfert", "XB", "YSO")

#: Feature categories of the naive Bayes classifier (Tranin et al.): each has its own
#: weight. Location (|galactic latitude|) is optional: the paper uses no positions.
SPECTRUM_FEATURES = ("hard_hm", "hard_hs", "hard_ms", "powlaw_gamma", "bb_kt")
VARIABILITY_FEATURES = (
    "var_prob_b",
    "var_ratio_b",
    "var_prob_h",
    "var_ratio_h",
    "var_prob_s",
    "var_ratio_s",
    "var_newq_b",
)
LOCATION_FEATURE = "abs_glat"

#: Columns identifying a detection.
NAME = "name"
OBSID = "obsid"
CLUSTER = "cluster"
MAIN_TYPE = "main_type"

#: Other spellings of the source-name column: TOPCAT's crossmatch renames ``name``
#: to ``name_1`` when the matched table also has a ``name``.
NAME_ALIASES = ("name_1",)

#: Published defaults of the clustering stage.
N_COMPONENTS = 6
RANDOM_STATE = 42

#: Stage 3's choices, here so that its command line offers them without importing scikit-learn.
#: Classifiers stage 3 can use.
CLASSIFIER_METHODS = ("mahalanobis", "naive-bayes")
#: How a class scores a detection: the paper's softmin of squared distances, or the Gaussian log-density.
LIKELIHOODS = ("distance", "gaussian")
#: Class priors: none (the paper's), or each class's share of the cluster's references.
PRIORS = ("none", "references")
#: Scores the naive Bayes category weights can be tuned for.
NB_SCORES = ("macro_f1", "rarest_f1")
#: Share of detections flagged as outliers by default: the top of the references' outlier measure.
OUTLIER_FRACTION = 0.01
#: Percentiles at which the references' outlier measure is kept (one quantile each in the artifact).
OUTLIER_PERCENTILES = np.linspace(0, 100, 1001)


#: What a spreadsheet takes for the start of a formula in a CSV cell (OWASP's list): text
#: cells so written are counted in a warning (the pipeline's CSV tables, the explorer's exports).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
