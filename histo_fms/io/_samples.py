"""The sample sheet: which image belongs to which subject, animal and group."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..schema import image_key, parse_bool
from ._errors import InputError


def read_sample_sheet(path: str | Path) -> pd.DataFrame:
    """Read and validate a sample sheet CSV.

    Columns: ``image`` (file name, required), and any of ``subject``, ``animal``,
    ``group``, ``control`` (true for control-IgG sections), ``batch`` (staining batch;
    ``slide`` is used when there is no ``batch``: each batch is calibrated on its own
    controls) plus free extra columns, which are carried into the summaries.

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    pandas.DataFrame
        One row per image, ``control`` as bool, ``image`` unique.

    Raises
    ------
    InputError
        Missing file or ``image`` column, two rows naming one image (by
        :func:`histo_fms.schema.image_key`: ``a`` and ``a.ome.tif`` are one image), or
        unparseable ``control``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "sample sheet not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # noqa: BLE001
        raise InputError(path, f"not a readable CSV sample sheet ({exc})") from exc
    df.columns = [c.strip() for c in df.columns]
    if "image" not in df.columns:
        raise InputError(path, f"sample sheet needs an 'image' column; it has {list(df.columns)}")
    df["image"] = df["image"].str.strip()
    keys = df["image"].map(image_key)
    blank = df.index[keys == ""]
    if len(blank):
        raise InputError(path, f"row {int(blank[0]) + 2}: empty 'image'")
    dup = keys[keys.duplicated(keep=False)]
    if len(dup):
        rows = [int(i) + 2 for i in dup.index[dup == dup.iloc[0]]]  # CSV line numbers
        names = ", ".join(repr(df.loc[i - 2, "image"]) for i in rows)
        raise InputError(path, f"rows {' and '.join(map(str, rows))} name one image "
                               f"{dup.iloc[0]!r} ({names}); list each image once")
    if "control" in df.columns:
        try:
            df["control"] = parse_bool(df["control"], strict=True, extra_true=("control",),
                                       what="column 'control'").to_numpy()
        except ValueError as exc:
            raise InputError(path, str(exc)) from None
    else:
        df["control"] = False
    for col in ("subject", "animal", "group"):
        if col not in df.columns:
            df[col] = ""
    for col in ("batch", "slide"):
        if col in df.columns:
            df[col] = df[col].str.strip()
    return df.reset_index(drop=True)


def batch_column(sheet: pd.DataFrame | None) -> str | None:
    """Return the staining-batch column of a sample sheet: ``batch``, ``slide`` or None."""
    if sheet is None:
        return None
    for col in ("batch", "slide"):
        if col in sheet.columns:
            return col
    return None


def check_calibration_batches(sheet: pd.DataFrame | None, path: str | Path,
                              thresholds: dict | None = None,
                              threshold: float | None = None) -> None:
    """Check that every staining batch of a sample sheet can be calibrated.

    A batch (``batch`` or ``slide`` column) needs control sections (``control``
    true) unless an explicit threshold is given for it (``thresholds[batch]``) or for
    all (``threshold``).

    Parameters
    ----------
    sheet : pandas.DataFrame or None
        From :func:`read_sample_sheet` (None: nothing to check).
    path : str or Path
        The sheet, for the message.
    thresholds : dict, optional
        Explicit thresholds by batch.
    threshold : float, optional
        One explicit threshold for all batches.

    Raises
    ------
    InputError
        A batch without controls and without a threshold (one line, naming it).
    """
    col = batch_column(sheet)
    if col is None or threshold is not None:
        return
    given = {str(k) for k in (thresholds or {})}
    has_ctrl = sheet.groupby(col)["control"].any()
    missing = [str(b) for b, ok in has_ctrl.items() if not ok and str(b) not in given]
    if missing:
        raise InputError(path, f"{col} {', '.join(repr(b) for b in missing)} has no control "
                               f"sections (control=true); add some or give "
                               f"calibration.thresholds: {{{missing[0]}: value}}")


def match_sample(sheet: pd.DataFrame | None, path: str | Path, stem: str) -> dict | None:
    """Return the sample-sheet row of an image as a dict, or None when it is not listed.

    An image matches the row whose ``image`` has the same
    :func:`histo_fms.schema.image_key` (file name less its image extension, compared
    case-sensitively), whether the row gives a stem, a file name or a path.

    Parameters
    ----------
    sheet : pandas.DataFrame or None
        From :func:`read_sample_sheet`.
    path : str or Path
        The image file.
    stem : str
        Unused (kept for compatibility): the key is computed from ``path``.

    Returns
    -------
    dict or None
        The row (without ``image``), or None.

    Raises
    ------
    ValueError
        More than one row names the image (a sheet not read by :func:`read_sample_sheet`).
    """
    if sheet is None:
        return None
    key = image_key(path)
    hits = [i for i, img in enumerate(sheet["image"]) if image_key(img) == key]
    if len(hits) > 1:
        names = [sheet["image"].iloc[i] for i in hits]
        raise ValueError(f"sample sheet rows {names} all name image {Path(path).name!r}")
    if not hits:
        return None
    d = sheet.iloc[hits[0]].to_dict()
    d.pop("image")
    return d
