"""Aggregation without pseudo-replication: neurons -> sections -> animals (or subjects)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..schema import counted_rows, image_key, parse_bool
from ..schema import is_blank as _blank

UNITS = ("animal", "subject", "image")


def image_stem(name: str) -> str:
    """Return an image file name without its extensions (``a.ome.tif`` -> ``a``).

    Parameters
    ----------
    name : str
        File name or path.

    Returns
    -------
    str
        The stem (:func:`histo_fms.schema.image_key`, the rule used everywhere).
    """
    return image_key(name)


def resolve_unit(table: pd.DataFrame, unit: str | None = None) -> str:
    """Return the unit of analysis for a summary table.

    Parameters
    ----------
    table : pandas.DataFrame
        A per-image summary (``image`` and optionally ``animal``, ``subject``).
    unit : str or None
        Requested unit (``"animal"``, ``"subject"`` or ``"image"``); ``None`` picks
        ``animal`` when any row names one, else ``subject``, else ``image``.

    Returns
    -------
    str
        The unit column to aggregate on.
    """
    if unit is not None:
        if unit not in table.columns:
            raise ValueError(f"unit {unit!r} is not a column of the table ({list(table.columns)})")
        return unit
    for cand in ("animal", "subject"):
        if cand in table.columns and not _blank(table[cand]).all():
            return cand
    return "image"


def apply_sample_sheet(summary: pd.DataFrame, samples: pd.DataFrame | None) -> pd.DataFrame:
    """Override and augment a summary's sample columns from a sample sheet.

    Rows match by :func:`histo_fms.schema.image_key` (file name less its image extension).
    Non-blank sheet values win; sheet columns the summary lacks are added.

    Parameters
    ----------
    summary : pandas.DataFrame
        Per-image summary with an ``image`` column.
    samples : pandas.DataFrame or None
        From :func:`histo_fms.io.read_sample_sheet`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``summary`` with the sheet's columns merged in.
    """
    out = summary.copy()
    if samples is None or len(samples) == 0:
        return out
    sheet = samples.copy()
    sheet["_key"] = [image_key(i) for i in sheet["image"]]
    dup = sheet["_key"][sheet["_key"].duplicated(keep=False)]
    if len(dup):
        k = dup.iloc[0]
        names = sheet.loc[sheet["_key"] == k, "image"].tolist()
        raise ValueError(f"sample sheet names image {k!r} in more than one row: {names}")
    keys = [image_key(i) for i in out["image"]]
    lookup = sheet.drop(columns=["image"]).set_index("_key")
    for col in lookup.columns:
        vals = lookup[col].reindex(keys)
        vals.index = out.index
        if col not in out.columns:
            out[col] = vals
            continue
        if col == "control":
            has = vals.notna()
        else:
            has = ~_blank(vals)
        out[col] = out[col].astype(object)
        out.loc[has, col] = vals[has]
    return out


def _prepare(summary: pd.DataFrame, unit: str, include_controls: bool) -> pd.DataFrame:
    s = summary.copy()
    if "group" not in s.columns:
        s["group"] = ""
    s["group"] = s["group"].where(~_blank(s["group"]), "all").astype(str)
    if "control" in s.columns:
        s["control"] = parse_bool(s["control"]).to_numpy()
    else:
        s["control"] = False
    if include_controls:
        s.loc[s["control"], "group"] = "control IgG"
    else:
        s = s[~s["control"]]
    # a blank unit falls back to the image, so no section is silently pooled with another
    u = s[unit] if unit in s.columns else s["image"]
    s["unit_id"] = np.where(_blank(u), s["image"].astype(str), u.astype(str))
    return s


def pool_neurons(
    summary: pd.DataFrame,
    neurons_by_image: Mapping[str, pd.DataFrame],
    unit: str | None = None,
    *,
    include_controls: bool = False,
    exclude_border: bool = True,
) -> pd.DataFrame:
    """Stack per-image neuron tables with their image, unit and group.

    Parameters
    ----------
    summary : pandas.DataFrame
        Per-image DRG summary (``image``, ``group``, unit column, ``control``).
    neurons_by_image : mapping of str to pandas.DataFrame
        ``image`` (as in the summary) -> that image's ``neurons.csv``.
    unit : str or None
        Unit column (see :func:`resolve_unit`).
    include_controls : bool
        Keep control-IgG sections as their own group ``"control IgG"``.
    exclude_border : bool
        Drop neurons touching the image border.

    Returns
    -------
    pandas.DataFrame
        One row per neuron with extra columns ``image``, ``unit_id``, ``group``; rows a
        reviewer marked ``excluded`` are left out.
    """
    unit = resolve_unit(summary, unit)
    s = _prepare(summary, unit, include_controls)
    parts = []
    for _, row in s.iterrows():
        t = neurons_by_image.get(row["image"])
        if t is None or len(t) == 0:
            continue
        t = counted_rows(t).copy()
        if exclude_border and "touches_border" in t.columns:
            t = t[~parse_bool(t["touches_border"]).to_numpy()]
        t["image"] = row["image"]
        t["unit_id"] = row["unit_id"]
        t["group"] = row["group"]
        parts.append(t)
    if not parts:
        return pd.DataFrame(columns=["image", "unit_id", "group", "ring_igg", "igg_positive"])
    return pd.concat(parts, ignore_index=True)


def aggregate_drg(
    summary: pd.DataFrame,
    neurons_by_image: Mapping[str, pd.DataFrame] | None = None,
    unit: str | None = None,
    *,
    include_controls: bool = False,
    exclude_border: bool = True,
) -> pd.DataFrame:
    """Aggregate DRG results per unit (animal, subject or image).

    Neuron counts and the % IgG-positive are pooled over a unit's sections
    (positives / neurons), so a unit with more neurons is not over-weighted by
    sectioning and each unit is one observation.

    Parameters
    ----------
    summary : pandas.DataFrame
        ``drg_summary.csv`` (sample-sheet columns merged).
    neurons_by_image : mapping of str to pandas.DataFrame, optional
        Per-image neuron tables; images without one fall back to the summary's counts.
        Rows a reviewer marked ``excluded`` are not counted.
    unit : str or None
        Unit column (see :func:`resolve_unit`).
    include_controls : bool
        Keep control-IgG sections, as their own group ``"control IgG"``.
    exclude_border : bool
        Drop neurons touching the image border.

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``unit, unit_id, group, n_sections, n_neurons,
        n_igg_positive, pct_igg_positive, mean_ring_igg, median_ring_igg``.
        ``pct_igg_positive`` is over the called neurons of the sections whose IgG was
        measured (not a section without IgG, nor one whose every ring IgG is NaN: a
        blank channel); ``n_neurons`` counts every neuron.
    """
    unit = resolve_unit(summary, unit)
    s = _prepare(summary, unit, include_controls)
    neurons_by_image = neurons_by_image or {}
    per_img = []
    for _, row in s.iterrows():
        t = neurons_by_image.get(row["image"])
        if t is not None:
            t = counted_rows(t)
            if exclude_border and "touches_border" in t.columns:
                t = t[~parse_bool(t["touches_border"]).to_numpy()]
            ring = pd.to_numeric(t["ring_igg"], errors="coerce") if "ring_igg" in t else None
            n = len(t)
            rsum = float(np.nansum(ring)) if ring is not None else np.nan
            rn = int(ring.notna().sum()) if ring is not None else 0
            rvals = ring.dropna().to_numpy() if ring is not None else np.array([])
            # only called neurons of sections whose IgG was measured are a % IgG+
            # denominator (a section without IgG, or with a blank IgG channel, is no 0 %)
            called = (parse_bool(t["igg_positive"], nullable=True) if "igg_positive" in t
                      else pd.Series([], dtype="boolean"))
            ncall = int(called.notna().sum()) if rn else 0
            npos = int(called.fillna(False).sum()) if ncall else 0
        else:
            n = int(row.get("n_neurons", 0) or 0)
            k, c = pd.to_numeric(pd.Series([row.get("n_igg_positive"), row.get("n_called")]),
                                 errors="coerce")
            # n_called: the section's calls (older summaries without it: every neuron)
            ncall = (int(c) if np.isfinite(c) else n) if np.isfinite(k) else 0
            npos = int(k) if ncall else 0
            rsum, rn, rvals = np.nan, 0, np.array([])
        per_img.append({"unit_id": row["unit_id"], "group": row["group"], "n": n, "npos": npos,
                        "ncall": ncall, "rsum": rsum, "rn": rn, "rvals": rvals})
    rows = []
    df = pd.DataFrame(per_img)
    if df.empty:
        return pd.DataFrame(columns=["unit", "unit_id", "group", "n_sections", "n_neurons",
                                     "n_igg_positive", "pct_igg_positive", "mean_ring_igg",
                                     "median_ring_igg"])
    for (uid, grp), g in df.groupby(["unit_id", "group"], sort=True):
        n = int(g["n"].sum())
        npos = int(g["npos"].sum())
        ncall = int(g["ncall"].sum())
        rn = int(g["rn"].sum())
        vals = np.concatenate(list(g["rvals"])) if rn else np.array([])
        rows.append({
            "unit": unit, "unit_id": uid, "group": grp, "n_sections": len(g),
            "n_neurons": n, "n_igg_positive": npos if ncall else np.nan,
            "pct_igg_positive": 100.0 * npos / ncall if ncall else np.nan,
            "mean_ring_igg": float(np.nansum(g["rsum"]) / rn) if rn else np.nan,
            "median_ring_igg": float(np.median(vals)) if rn else np.nan,
        })
    return pd.DataFrame(rows)


def aggregate_skin(
    summary: pd.DataFrame,
    unit: str | None = None,
    *,
    include_controls: bool = False,
) -> pd.DataFrame:
    """Aggregate skin IENFD per unit (subject, animal or image).

    IENFD per unit is the total crossings over the total epidermis length of the
    unit's sections (not the mean of section densities).

    Parameters
    ----------
    summary : pandas.DataFrame
        ``skin_summary.csv`` (sample-sheet columns merged).
    unit : str or None
        Unit column (see :func:`resolve_unit`).
    include_controls : bool
        Keep sections flagged ``control`` as their own group.

    Returns
    -------
    pandas.DataFrame
        One row per unit: ``unit, unit_id, group, n_sections, n_crossings,
        epidermis_length_mm, ienfd_per_mm, mean_section_ienfd``.
    """
    unit = resolve_unit(summary, unit)
    s = _prepare(summary, unit, include_controls)
    s["n_crossings"] = pd.to_numeric(s["n_crossings"], errors="coerce")
    s["epidermis_length_mm"] = pd.to_numeric(s["epidermis_length_mm"], errors="coerce")
    rows = []
    for (uid, grp), g in s.groupby(["unit_id", "group"], sort=True):
        length = float(g["epidermis_length_mm"].sum())
        nc = int(g["n_crossings"].sum())
        sec = g["n_crossings"] / g["epidermis_length_mm"]
        rows.append({"unit": unit, "unit_id": uid, "group": grp, "n_sections": len(g),
                     "n_crossings": nc, "epidermis_length_mm": length,
                     "ienfd_per_mm": nc / length if length > 0 else np.nan,
                     "mean_section_ienfd": float(sec.mean())})
    return pd.DataFrame(rows, columns=["unit", "unit_id", "group", "n_sections", "n_crossings",
                                       "epidermis_length_mm", "ienfd_per_mm",
                                       "mean_section_ienfd"])
