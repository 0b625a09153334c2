"""The output tables, declared once: columns, dtypes, units, readers and writers.

Every CSV a run, a review or ``histo-fms figures`` writes is declared here (as
scikit-image declares the columns of ``regionprops``): its columns in order, their dtype,
unit and meaning. Batch, review, statistics, figures, export and the napari plugin read
and write the tables through :func:`read_table` / :func:`write_table`, so every consumer
sees the same dtypes (booleans as booleans, blank sample columns as ``""``) and honours the
``excluded`` column of reviewed tables (:func:`counted_rows`).

This module needs only pandas and numpy; writing goes through the atomic writer of
:mod:`histo_fms.io` (imported when a table is written).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: The strings read as True / False in boolean columns and the sample sheet (case-insensitive),
#: and their parser (a leaf module, so pure-compute packages share it without IO).
from ._booleans import FALSE_STRINGS, TRUE_STRINGS, parse_bool  # noqa: F401 (re-exported)

#: Plausible microscopy pixel sizes, µm (inclusive bounds).
PIXEL_SIZE_RANGE_UM: tuple[float, float] = (0.01, 50.0)

_DTYPES = ("int", "float", "bool", "boolean", "str")


@dataclass(frozen=True)
class Column:
    """One declared column of an output table.

    Attributes
    ----------
    name : str
        Column name (stable: part of the output contract).
    dtype : {"int", "float", "bool", "boolean", "str"}
        ``bool`` never missing (blank reads as False); ``boolean`` may be missing (NA).
    unit : str
        Physical unit, ``""`` for counts, ids, flags and text.
    description : str
        What the value means.
    required : bool
        Whether every writer of the table writes it (optional columns exist in some
        variants, e.g. only in reviewed tables).
    """

    name: str
    dtype: str
    unit: str = ""
    description: str = ""
    required: bool = True

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ValueError(f"column {self.name}: unknown dtype {self.dtype!r}")


@dataclass(frozen=True)
class Table:
    """A declared output table.

    Attributes
    ----------
    name : str
        Key in :data:`TABLES`.
    path : str
        Where it lives in an output folder (``STEM`` is the image's output name).
    description : str
        One row per what.
    columns : tuple of Column
        Declared columns, in output order; writers may append extra columns after them
        (free sample-sheet columns are carried this way).
    needed : tuple of str
        Columns a reader cannot do without (:func:`read_table` refuses a file without
        them); the other columns are conformed when present.
    """

    name: str
    path: str
    description: str
    columns: tuple[Column, ...]
    needed: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        """Declared column names, in order."""
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        """Names of the columns every writer writes."""
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        """Return the declared column ``name`` (KeyError when undeclared)."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}: no column {name!r}")


def _c(name: str, dtype: str, unit: str = "", description: str = "", required: bool = True
       ) -> Column:
    return Column(name, dtype, unit, description, required)


_SAMPLE = (
    _c("subject", "str", "", "sample sheet: subject (human donor)", required=False),
    _c("animal", "str", "", "sample sheet: animal (IgG recipient)", required=False),
    _c("group", "str", "", "sample sheet: group (e.g. FMS-IgG, HC-IgG)", required=False),
)
_CONTROL = _c("control", "bool", "", "sample sheet: control-IgG section (calibrates the "
              "threshold; left out of the statistics unless --include-controls)",
              required=False)
_REVIEW = (
    _c("igg_positive_auto", "boolean", "", "reviewed tables: the threshold's call before "
       "the reviewer's overrides", required=False),
    _c("call_source", "str", "", "reviewed tables: `threshold` or `reviewer`", required=False),
    _c("excluded", "bool", "", "reviewed tables: the reviewer excluded the row; every "
       "count, statistic and figure leaves it out", required=False),
)

NEURONS = Table("neurons", "STEM/neurons.csv", "one row per neuron (DRG)", (
    _c("neuron_id", "int", "", "label of the neuron in labels.zarr/neurons"),
    _c("y_um", "float", "µm", "centroid, from the centre of the top-left pixel, y down"),
    _c("x_um", "float", "µm", "centroid, x right"),
    _c("area_um2", "float", "µm²", "soma area"),
    _c("diameter_um", "float", "µm", "equivalent diameter"),
    _c("size_class", "str", "", "`small`, `medium` or `large` (size_class_bounds_um)"),
    _c("touches_border", "bool", "", "the soma touches the image border (left out of "
       "summaries)"),
    _c("ring_igg", "float", "ratio", "ring IgG / local background (dimensionless)"),
    _c("igg_positive", "boolean", "", "ring_igg > the run's threshold (blank without a "
       "threshold, and where ring_igg is blank: an unmeasured ring is not called)",
       required=False),
    _c("ring_area_um2", "float", "µm²", "area of the measured SGC ring"),
    _c("ring_mean", "float", "counts", "mean IgG in the ring (dark-subtracted)"),
    _c("ring_median", "float", "counts", "median IgG in the ring (dark-subtracted)"),
    _c("background", "float", "counts", "local IgG background (dark-subtracted)"),
    _c("background_source", "str", "", "`local` band or `tissue`-wide fallback"),
    _c("ring_igg_coverage", "float", "fraction", "ring pixels above igg_coverage_factor x "
       "background"),
    _c("sgc_coverage", "float", "fraction", "ring pixels SGC-marker positive (NaN without "
       "an SGC channel)"),
    *_REVIEW,
), needed=("neuron_id",))

CROSSINGS = Table("crossings", "STEM/crossings.csv", "one row per counted fibre crossing "
                  "(skin)", (
    _c("y_um", "float", "µm", "where the fibre crosses the DEJ, y down"),
    _c("x_um", "float", "µm", "where the fibre crosses the DEJ, x right"),
    _c("fibre_id", "int", "", "label of the fibre in labels.zarr/fibres (-1: added by "
       "a reviewer without one)"),
    _c("penetration_um", "float", "µm", "deepest point of the fibre inside the epidermis, "
       "from the DEJ", required=False),
    _c("source", "str", "", "reviewed tables: `auto` or `reviewer`", required=False),
    _c("excluded", "bool", "", "reviewed tables: inside an excluded region; not counted",
       required=False),
), needed=("y_um", "x_um"))

_ROLES = (
    _c("roles_used", "str", "", "channel roles measured with (`+`-joined)", required=False),
    _c("roles_skipped", "str", "", "optional roles skipped: the file lacks their channel "
       "(`role=name`)", required=False),
)
# optional per-section columns of the summaries (also carried into the reviewed ones)
_DRG_EXTRA = (
    *_ROLES,
    _c("pct_ci_low", "float", "%", "95 % interval of pct_igg_positive: Wilson on the calls, "
       "widened by the threshold's bootstrap", required=False),
    _c("pct_ci_high", "float", "%", "upper end of that interval", required=False),
    _c("calibration", "str", "", "how the threshold was set: `robust`, `percentile` or "
       "`explicit`", required=False),
    _c("qc_flag", "str", "", "`sgc_no_signal`: the SGC channel had no structure above its "
       "pixel noise and was left out (blank when none)", required=False),
)
_SKIN_EXTRA = (
    _c("dej_source", "str", "", "`collagen_iv`, `nuclei`, `autofluorescence` or `reviewer`",
       required=False),
    _c("dej_to_surface_ratio", "float", "ratio", "DEJ length / surface length",
       required=False),
    _c("epidermis_thickness_um", "float", "µm", "median epidermal thickness", required=False),
    _c("qc_flag", "str", "", "implausible epidermis or DEJ (blank when none)", required=False),
    *_ROLES,
    _c("modality", "str", "", "`fluorescence` or `brightfield`", required=False),
    _c("stain_source", "str", "", "bright-field: `estimated` (Macenko), `hdab`, `hed` or "
       "`given`", required=False),
    _c("stain_vectors", "str", "", "bright-field: JSON, the unit OD vector (R, G, B) of each "
       "stain used", required=False),
    _c("white_level", "str", "", "bright-field: JSON, the slide white level [R, G, B] used",
       required=False),
    _c("wsi_regions", "str", "", "bright-field whole-slide path only: tissue pieces and "
       "analysis windows, e.g. `1 piece(s), 3 window(s)` (blank when analysed whole)",
       required=False),
    _c("wsi_windows", "str", "", "bright-field whole-slide path only: per window and tissue "
       "piece, the DEJ and surface length (mm) and crossings it gave, or `FAILED (reason)`, "
       "or `skipped (reason)` (too little tissue in the window's core)",
       required=False),
    _c("wsi_failed_windows", "int", "", "bright-field whole-slide path only: windows (tissue "
       "pieces in them) that gave no epidermis; their tissue is not counted", required=False),
)

DRG_SUMMARY = Table("drg_summary", "drg_summary.csv", "one row per DRG section", (
    _c("image", "str", "", "input file name"),
    _c("n_neurons", "int", "", "neurons counted (border-touching left out)"),
    _c("n_called", "float", "", "counted neurons with a call: their ring IgG was measured "
       "(blank without a threshold)", required=False),
    _c("n_igg_positive", "float", "", "IgG-positive neurons (blank without a threshold)"),
    _c("pct_igg_positive", "float", "%", "100 x n_igg_positive / n_called (neurons whose "
       "ring IgG could not be measured are left uncalled, not counted negative)"),
    _c("median_ring_igg", "float", "ratio", "median ring_igg of the counted neurons"),
    _c("threshold", "float", "ratio", "the ring_igg threshold used for the calls"),
    _c("pixel_size_um", "float", "µm", "pixel size used"),
    *_DRG_EXTRA, *_SAMPLE, _CONTROL,
), needed=("image",))

SKIN_SUMMARY = Table("skin_summary", "skin_summary.csv", "one row per skin section", (
    _c("image", "str", "", "input file name"),
    _c("n_crossings", "int", "", "fibre crossings counted"),
    _c("epidermis_length_mm", "float", "mm", "length of the epidermal surface"),
    _c("dej_length_mm", "float", "mm", "length of the dermal-epidermal junction"),
    _c("ienfd_per_mm", "float", "1/mm", "n_crossings / epidermis_length_mm"),
    _c("pixel_size_um", "float", "µm", "pixel size used"),
    *_SKIN_EXTRA,
    *_SAMPLE,
), needed=("image",))

_REVIEWED_HEAD = (
    _c("image", "str", "", "input file name"),
    _c("reviewed", "bool", "", "a reviewer recomputed this image"),
    _c("stale", "bool", "", "edited after its last recompute (reviewed values are the "
       "last recompute's; `histo-fms figures` refuses them unless `--allow-stale`)",
       required=False),
    _c("reviewer", "str", "", "who"),
    _c("reviewed_at", "str", "", "when (UTC, ISO 8601)"),
)


def _pairs(cols: Iterable[tuple[str, str, str]]) -> tuple[Column, ...]:
    out = []
    for name, dtype, unit in cols:
        out.append(_c(f"{name}_auto", dtype, unit, f"automatic {name}"))
        out.append(_c(name, dtype, unit, f"reviewed {name} (automatic when not reviewed)"))
    return tuple(out)


_DRG_MAIN = (("n_neurons", "float", ""), ("n_called", "float", ""),
             ("n_igg_positive", "float", ""),
             ("pct_igg_positive", "float", "%"), ("median_ring_igg", "float", "ratio"))
_SKIN_MAIN = (("n_crossings", "float", ""), ("epidermis_length_mm", "float", "mm"),
              ("dej_length_mm", "float", "mm"), ("ienfd_per_mm", "float", "1/mm"))
_DELTA = (_c("n_auto", "float", "", "automatic count"),
          _c("n_reviewed", "float", "", "reviewed count"),
          _c("delta", "float", "", "n_reviewed - n_auto"))

DRG_SUMMARY_REVIEWED = Table(
    "drg_summary_reviewed", "drg_summary_reviewed.csv",
    "one row per DRG section, automatic vs reviewed (written by the review)",
    (*_REVIEWED_HEAD, *_pairs(_DRG_MAIN), *_DELTA,
     *(_c(f"delta_{n}", "float", u, f"reviewed - automatic {n}") for n, _, u in _DRG_MAIN[1:]),
     _c("threshold", "float", "ratio", "the run's threshold", required=False),
     _c("pixel_size_um", "float", "µm", "pixel size used", required=False), *_DRG_EXTRA,
     *_SAMPLE, _CONTROL),
    needed=("image",))

SKIN_SUMMARY_REVIEWED = Table(
    "skin_summary_reviewed", "skin_summary_reviewed.csv",
    "one row per skin section, automatic vs reviewed (written by the review)",
    (*_REVIEWED_HEAD, *_pairs(_SKIN_MAIN), *_DELTA,
     *(_c(f"delta_{n}", "float", u, f"reviewed - automatic {n}") for n, _, u in _SKIN_MAIN[1:]),
     _c("pixel_size_um", "float", "µm", "pixel size used", required=False), *_SKIN_EXTRA,
     *_SAMPLE),
    needed=("image",))

_UNIT_HEAD = (
    _c("unit", "str", "", "unit of analysis: `animal`, `subject` or `image`"),
    _c("unit_id", "str", "", "the animal / subject / image"),
    _c("group", "str", "", "group (`control IgG` with --include-controls)"),
    _c("n_sections", "int", "", "sections pooled"),
)

DRG_PER_UNIT = Table("drg_per_unit", "figures/drg_per_UNIT.csv", "one row per unit (DRG)", (
    *_UNIT_HEAD,
    _c("n_neurons", "int", "", "counted neurons of the unit's sections (border and "
       "excluded left out)"),
    _c("n_igg_positive", "int", "", "IgG-positive among them (blank: none called, e.g. "
       "no IgG channel)"),
    _c("pct_igg_positive", "float", "%", "100 x n_igg_positive / called neurons (pooled; "
       "sections without measured IgG left out)"),
    _c("mean_ring_igg", "float", "ratio", "mean ring_igg over the unit's neurons"),
    _c("median_ring_igg", "float", "ratio", "median ring_igg over the unit's neurons"),
))

SKIN_PER_UNIT = Table("skin_per_unit", "figures/skin_per_UNIT.csv", "one row per unit (skin)", (
    *_UNIT_HEAD,
    _c("n_crossings", "int", "", "crossings of the unit's sections (excluded left out)"),
    _c("epidermis_length_mm", "float", "mm", "total epidermis length"),
    _c("ienfd_per_mm", "float", "1/mm", "n_crossings / epidermis_length_mm (pooled)"),
    _c("mean_section_ienfd", "float", "1/mm", "mean of the sections' IENFD"),
))

STATS = Table("stats", "figures/stats.csv", "one row per test", (
    _c("readout", "str", "", "what is compared"),
    _c("unit", "str", "", "unit of analysis"),
    _c("test", "str", "", "Mann-Whitney U, Kruskal-Wallis, MixedLM, or none"),
    _c("group_a", "str", "", "first group (sorted order)"),
    _c("group_b", "str", "", "second group"),
    _c("n_a", "float", "", "units in group_a"),
    _c("n_b", "float", "", "units in group_b"),
    _c("statistic", "float", "", "U, H or Wald z"),
    _c("p", "float", "", "two-sided p (NaN when a group has fewer than 3 units for the "
       "mixed model)"),
    _c("p_adjusted", "float", "", "Holm-adjusted p"),
    _c("effect_size", "float", "", "Cliff's delta, epsilon squared or ratio of geometric "
       "means"),
    _c("effect_size_name", "str", "", "which effect size"),
    _c("estimate", "float", "", "Hodges-Lehmann shift a - b or log ratio a - b"),
    _c("estimate_name", "str", "", "which estimate"),
    _c("ci_low", "float", "", "95 % CI of the estimate, low"),
    _c("ci_high", "float", "", "95 % CI of the estimate, high"),
    _c("note", "str", "", "method, small-n cautions"),
))

#: Every declared table, by name.
TABLES: dict[str, Table] = {t.name: t for t in (
    NEURONS, CROSSINGS, DRG_SUMMARY, SKIN_SUMMARY, DRG_SUMMARY_REVIEWED,
    SKIN_SUMMARY_REVIEWED, DRG_PER_UNIT, SKIN_PER_UNIT, STATS)}

#: The leading columns of ``neurons.csv`` (the measurement table's order follows).
NEURON_COLUMNS: list[str] = ["neuron_id", "y_um", "x_um", "area_um2", "diameter_um",
                             "size_class", "touches_border", "ring_igg", "igg_positive"]


# ------------------------------------------------------------------------------ parsing
def is_blank(values: pd.Series) -> pd.Series:
    """Return True where a text column is missing or blank (``""``, ``nan``, ``None``).

    Parameters
    ----------
    values : pandas.Series
        Any column.

    Returns
    -------
    pandas.Series of bool
    """
    return values.isna() | values.astype(str).str.strip().isin(["", "nan", "None", "NaN",
                                                                 "<NA>"])


def _coerce(df: pd.DataFrame, table: Table) -> pd.DataFrame:
    for col in table.columns:
        if col.name not in df.columns:
            continue
        s = df[col.name]
        if col.dtype == "bool":
            df[col.name] = parse_bool(s)
        elif col.dtype == "boolean":
            df[col.name] = parse_bool(s, nullable=True)
        elif col.dtype == "float":
            df[col.name] = pd.to_numeric(s, errors="coerce").astype(float)
        elif col.dtype == "int":
            num = pd.to_numeric(s, errors="coerce")
            if num.notna().all() and (num == np.round(num)).all():
                df[col.name] = num.astype(np.int64)
            else:
                df[col.name] = num.astype(float)
        else:
            df[col.name] = s.astype(object).where(~is_blank(s), "").astype(str)
    return df


def conform(df: pd.DataFrame, table: str | Table) -> pd.DataFrame:
    """Coerce a table's declared columns to their dtypes and put them first, in order.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    table : str or Table
        Its declaration (a key of :data:`TABLES`).

    Returns
    -------
    pandas.DataFrame
        A copy; undeclared columns keep their order after the declared ones.
    """
    t = TABLES[table] if isinstance(table, str) else table
    out = _coerce(df.copy(), t)
    first = [c for c in t.names if c in out.columns]
    if t is NEURONS:  # the measurement order: NEURON_COLUMNS, then the ring columns
        first = [c for c in NEURON_COLUMNS if c in out.columns] + [
            c for c in first if c not in NEURON_COLUMNS]
    return out[first + [c for c in out.columns if c not in first]]


def read_table(path: str | Path, table: str | Table, *, missing_ok: bool = False
               ) -> pd.DataFrame:
    """Read a declared output table with its dtypes.

    Parameters
    ----------
    path : str or Path
        The CSV.
    table : str or Table
        Its declaration (``"neurons"``, ``"crossings"``, ``"drg_summary"``, ...).
    missing_ok : bool
        Return an empty table with the declared columns when the file does not exist.

    Returns
    -------
    pandas.DataFrame
        Booleans as ``bool`` (``boolean`` where they may be missing), counts as ints,
        blank text as ``""``; declared columns first.

    Raises
    ------
    FileNotFoundError
        The file does not exist (and not ``missing_ok``).
    ValueError
        The file lacks a needed column (one line naming the file and the columns).
    """
    t = TABLES[table] if isinstance(table, str) else table
    path = Path(path)
    if not path.is_file():
        if missing_ok:
            return conform(empty_table(t), t)
        raise FileNotFoundError(f"{path}: no such table")
    try:
        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        df = pd.DataFrame(columns=t.required)
    missing = [c for c in t.needed if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a {t.name} table (missing column(s) {missing})")
    return conform(df, t)


def empty_table(table: str | Table) -> pd.DataFrame:
    """Return an empty table with every declared column of a declaration.

    Parameters
    ----------
    table : str or Table
        Its declaration.

    Returns
    -------
    pandas.DataFrame
    """
    t = TABLES[table] if isinstance(table, str) else table
    return pd.DataFrame({c.name: pd.Series(dtype=_PD[c.dtype]) for c in t.columns})


_PD = {"int": np.int64, "float": float, "bool": bool, "boolean": "boolean", "str": object}


def write_table(df: pd.DataFrame, path: str | Path, table: str | Table | None = None) -> Path:
    """Write a table atomically as CSV, conformed to its declaration.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : str or Path
        Destination ``.csv``.
    table : str or Table, optional
        Its declaration; None writes ``df`` as it is.

    Returns
    -------
    Path
        ``path``.
    """
    from .io._write import write_table as _atomic_write

    if table is not None:
        df = conform(df, table)
    return _atomic_write(df, path)


def counted_rows(df: pd.DataFrame | None) -> pd.DataFrame | None:
    """Drop the rows a reviewer excluded (``excluded`` True); None stays None.

    Deleted neurons and crossings are absent from reviewed tables already; every
    consumer that counts rows (statistics, figures, summaries) goes through this.

    Parameters
    ----------
    df : pandas.DataFrame or None
        A neurons or crossings table.

    Returns
    -------
    pandas.DataFrame or None
        The rows that count.
    """
    if df is None or "excluded" not in df.columns:
        return df
    return df.loc[~parse_bool(df["excluded"]).to_numpy()]


#: Image extensions stripped from a file name to give its key (longest first).
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".ome.tiff", ".ome.tif", ".ome.zarr", ".ome.btf", ".tiff", ".tif", ".btf", ".tf2", ".tf8",
    ".svs", ".ndpi", ".zarr", ".czi", ".nd2", ".lif", ".jpg", ".jpeg", ".png")


def image_key(name: str | Path) -> str:
    """Return the key that names an image everywhere: its file name less an image extension.

    The one matching rule of the package: output folders (``OUT/KEY``), sample-sheet rows
    and summaries match images by it. Only known image extensions are removed (matched
    case-insensitively); the rest is compared case-sensitively, so ``drg_m1``,
    ``drg_m1.ome.tif`` and ``data/drg_m1.ome.tif`` are one image and ``DRG_m1`` another.

    Parameters
    ----------
    name : str or Path
        File name or path (a sample sheet's ``image`` value).

    Returns
    -------
    str
        The key.

    Examples
    --------
    >>> image_key("data/drg_m1.ome.tif"), image_key("drg_m1"), image_key("a.v2.czi")
    ('drg_m1', 'drg_m1', 'a.v2')
    """
    base = Path(str(name).strip().rstrip("/\\")).name
    low = base.lower()
    for ext in IMAGE_EXTENSIONS:
        if low.endswith(ext) and len(base) > len(ext):
            return base[: -len(ext)]
    return base


def check_pixel_size(value: float, *, what: str = "pixel size") -> float:
    """Return a pixel size in µm, or raise when it is not plausible microscopy.

    Parameters
    ----------
    value : float
        Pixel size, µm.
    what : str
        Where it came from (named in the error).

    Returns
    -------
    float
        ``value``.

    Raises
    ------
    ValueError
        Not a finite number within :data:`PIXEL_SIZE_RANGE_UM`.
    """
    lo, hi = PIXEL_SIZE_RANGE_UM
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number of µm, got {value!r}") from None
    if not np.isfinite(v) or not lo <= v <= hi:
        raise ValueError(f"{what} {value!r} µm is outside the plausible range "
                         f"{lo:g}-{hi:g} µm per pixel")
    return v
