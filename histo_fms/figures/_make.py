"""``make_figures``: a results folder in, paper figures, statistics and a report page out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from histo_fms import schema
from histo_fms import stats as hs

from ._montage import load_panel, make_montage, pick_representative
from ._plots import (
    plot_bland_altman,
    plot_ienfd,
    plot_pct_igg,
    plot_ring_igg_by_size,
    save_figure,
)
from ._report import write_report


@dataclass
class FiguresReport:
    """What :func:`make_figures` wrote.

    Attributes
    ----------
    figures : dict of str to list of Path
        Figure name -> files (one per format).
    stats_path : Path or None
        ``stats.csv`` (None when there was nothing to test).
    report_path : Path
        The HTML report page.
    tables : dict of str to Path
        Per-unit tables written (``drg_per_<unit>.csv``, ``skin_per_<unit>.csv``).
    plotted : dict of str to pandas.DataFrame
        The values behind each figure.
    stats : pandas.DataFrame
        The statistics table.
    notes : list of str
        Warnings (missing inputs, skipped figures).
    """

    figures: dict[str, list[Path]] = field(default_factory=dict)
    stats_path: Path | None = None
    report_path: Path | None = None
    tables: dict[str, Path] = field(default_factory=dict)
    plotted: dict[str, pd.DataFrame] = field(default_factory=dict)
    stats: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=hs.STATS_COLUMNS))
    notes: list[str] = field(default_factory=list)


def _stem(image: str) -> str:
    from histo_fms.io import image_stem

    return image_stem(Path(str(image)).name)


def _read_csv(path: Path, table: str) -> pd.DataFrame | None:
    return schema.read_table(path, table) if path.is_file() else None


def _per_image(results: Path, summary: pd.DataFrame, name: str, *, reviewed: bool
               ) -> dict[str, pd.DataFrame]:
    out = {}
    for img in summary["image"]:
        d = results / _stem(img)
        p = d / "reviewed" / name if reviewed else d / name
        t = _read_csv(p, Path(name).stem)
        if t is not None:
            out[img] = t
    return out


def _n_positive(table: pd.DataFrame) -> int:
    """IgG-positive rows that count (a reviewer's exclusions left out)."""
    t = schema.counted_rows(table)
    return int(schema.parse_bool(t["igg_positive"]).sum()) if "igg_positive" in t else 0


def _chosen(sections: pd.DataFrame, images: Sequence[str]) -> list[tuple[str, str]]:
    """(title, image) for the named images, in the order named; title is the group."""
    by_key = {}
    for _, r in sections.iterrows():
        by_key[str(r["image"])] = r
        by_key[_stem(r["image"])] = r
    out = []
    for name in images:
        r = by_key.get(str(name)) if str(name) in by_key else by_key.get(_stem(name))
        if r is None:
            continue
        g = str(r.get("group", "")) if pd.notna(r.get("group", "")) else ""
        out.append((g or _stem(r["image"]), str(r["image"])))
    titles = [t for t, _ in out]
    return [(t if titles.count(t) == 1 else f"{t}: {_stem(i)}", i) for t, i in out]


def _load_summary(results: Path, kind: str, samples: pd.DataFrame | None
                  ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    auto = _read_csv(results / f"{kind}_summary.csv", f"{kind}_summary")
    rev = _read_csv(results / f"{kind}_summary_reviewed.csv", f"{kind}_summary_reviewed")
    if auto is not None:
        auto = hs.apply_sample_sheet(auto, samples)
    if rev is not None:
        rev = hs.apply_sample_sheet(rev, samples)
    return auto, rev


def _check_not_stale(results: Path, allow_stale: bool) -> None:
    """Refuse reviews edited after their last recompute (their tables are older)."""
    from histo_fms.io import InputError
    from histo_fms.review import stale_reviews

    stale = [] if allow_stale else stale_reviews(results)
    if stale:
        raise InputError(results, f"reviews edited after their last recompute (stale): "
                                  f"{', '.join(stale)}; recompute them in the review widget "
                                  "(or pass --allow-stale)")


def make_figures(
    results_dir: str | Path,
    samples: str | Path | pd.DataFrame | None = None,
    out: str | Path | None = None,
    formats: Sequence[str] | str = ("svg", "pdf", "png"),
    unit: str | None = None,
    *,
    images: Sequence[str] | None = None,
    include_controls: bool = False,
    mixed_model: bool = True,
    allow_stale: bool = False,
) -> FiguresReport:
    """Make the paper figures, ``stats.csv`` and ``report.html`` of one results folder.

    Every plot and test uses one value per unit (``animal`` by default, else ``subject``,
    else ``image``); section and neuron counts are reported. Reviewed results
    (``STEM/reviewed/*.csv``, ``*_summary_reviewed.csv``) replace automatic ones for
    the statistics when present, and automatic-vs-reviewed Bland-Altman plots are drawn.

    Parameters
    ----------
    results_dir : str or Path
        The pipeline's ``OUT`` folder.
    samples : str, Path, pandas.DataFrame or None
        Sample sheet overriding/augmenting the summaries' ``subject, animal, group,
        control`` columns.
    out : str or Path or None
        Figure folder (default ``results_dir/figures``).
    formats : sequence of str or str
        Figure file formats (a comma-separated string is accepted).
    unit : str or None
        Unit of analysis; ``None`` chooses per pipeline.
    images : sequence of str or None
        Sections for the representative montage (file names or stems), one panel each in
        this order (names not in a summary are skipped); default: per group the section
        closest to the group median.
    include_controls : bool
        Show control-IgG sections as their own group in plots and tests.
    mixed_model : bool
        Also fit the neuron-level mixed model of log ring IgG.
    allow_stale : bool
        Use reviews edited after their last recompute (``stale`` in
        ``*_summary_reviewed.csv``) with their last recomputed values. By default such
        a folder is refused: recompute the reviews first.

    Returns
    -------
    FiguresReport
        The files written and the values behind them.
    """
    from histo_fms.io import read_sample_sheet, write_table

    results = Path(results_dir)
    outdir = Path(out) if out is not None else results / "figures"
    outdir.mkdir(parents=True, exist_ok=True)
    if isinstance(samples, (str, Path)):
        samples = read_sample_sheet(samples)
    if isinstance(formats, str):
        formats = formats.split(",")
    formats = [f.strip().lower().lstrip(".") for f in formats if f.strip()]
    if not formats:
        raise ValueError("no figure format given")
    _check_not_stale(results, allow_stale)
    rep = FiguresReport()
    stats_parts: list[pd.DataFrame] = []
    run = json.loads((results / "run.json").read_text()) if (results / "run.json").is_file() \
        else None
    paths = {Path(f["path"]).name: f["path"] for f in (run or {}).get("files", [])
             if f.get("path")}
    montage_tables: dict[str, pd.DataFrame] = {}

    def save(name: str, fig: object, plotted: pd.DataFrame) -> None:
        rep.figures[name] = save_figure(fig, outdir / name, formats)  # type: ignore[arg-type]
        rep.plotted[name] = plotted

    # ---- DRG -------------------------------------------------------------------------------
    drg, drg_rev = _load_summary(results, "drg", samples)
    if drg is not None and len(drg):
        u = hs.resolve_unit(drg, unit)
        auto_n = _per_image(results, drg, "neurons.csv", reviewed=False)
        rev_n = _per_image(results, drg, "neurons.csv", reviewed=True)
        reviewed = bool(rev_n) or drg_rev is not None
        summ = drg_rev if drg_rev is not None else drg
        neurons = {**auto_n, **rev_n}
        src = "reviewed" if reviewed else "automatic"
        per_unit = hs.aggregate_drg(summ, neurons, u, include_controls=include_controls)
        rep.tables["drg"] = write_table(per_unit, outdir / f"drg_per_{u}.csv")
        montage_tables[f"DRG per {u} ({src})"] = per_unit
        groups = sorted(per_unit["group"].astype(str).unique())
        fig, pl = plot_pct_igg(per_unit, groups=groups)
        save("drg_pct_igg_positive", fig, pl)
        pooled = hs.pool_neurons(summ, neurons, u, include_controls=include_controls)
        if len(pooled):
            fig, pl = plot_ring_igg_by_size(pooled, unit=u, groups=groups)
            save("drg_ring_igg_by_size", fig, pl)
        for col, name in (("pct_igg_positive", "% IgG-positive neurons"),
                          ("mean_ring_igg", "mean ring IgG ratio")):
            st = hs.compare_groups(per_unit, col, readout=f"{name} ({src})", unit=u)
            stats_parts.append(st)
        if mixed_model and len(pooled) and pooled["group"].nunique() > 1:
            stats_parts.append(hs.mixed_model_ring_igg(pooled, unit=u))
        if rev_n:
            common = sorted(set(auto_n) & set(rev_n))
            a = [_n_positive(auto_n[i]) for i in common]
            b = [_n_positive(rev_n[i]) for i in common]
            if common:
                fig, pl = plot_bland_altman(np.array(a), np.array(b),
                                            label="IgG-positive neurons (count)")
                pl.insert(0, "image", common)
                save("drg_bland_altman", fig, pl)
        sec = summ.copy()
        try:
            if images:
                pick = _chosen(sec, images)
            else:
                ctrl = sec.get("control", pd.Series(False, index=sec.index))
                keep = sec[~schema.parse_bool(ctrl).to_numpy()]
                pick = sorted(pick_representative(keep, "pct_igg_positive").items())
            panels = [load_panel(paths.get(img), str(results / _stem(img)), title=g, kind="drg",
                                 neurons=neurons.get(img)) for g, img in pick]
            if panels:
                fig, pl = make_montage(panels, title="Representative DRG sections")
                pl.insert(0, "image", [img for _, img in pick])
                save("drg_montage", fig, pl)
        except (OSError, ValueError, KeyError) as exc:
            rep.notes.append(f"DRG montage skipped: {exc}")

    # ---- skin ------------------------------------------------------------------------------
    skin, skin_rev = _load_summary(results, "skin", samples)
    if skin is not None and len(skin):
        u = hs.resolve_unit(skin, unit)
        auto_c = _per_image(results, skin, "crossings.csv", reviewed=False)
        rev_c = _per_image(results, skin, "crossings.csv", reviewed=True)
        summ = skin_rev.copy() if skin_rev is not None else skin.copy()
        if rev_c and skin_rev is None:
            for img, t in rev_c.items():
                summ.loc[summ["image"] == img, "n_crossings"] = len(schema.counted_rows(t))
        src = "reviewed" if (rev_c or skin_rev is not None) else "automatic"
        per_unit = hs.aggregate_skin(summ, u, include_controls=include_controls)
        rep.tables["skin"] = write_table(per_unit, outdir / f"skin_per_{u}.csv")
        montage_tables[f"Skin per {u} ({src})"] = per_unit
        fig, pl = plot_ienfd(per_unit)
        save("skin_ienfd", fig, pl)
        stats_parts.append(hs.compare_groups(per_unit, "ienfd_per_mm",
                                             readout=f"IENFD fibres/mm ({src})", unit=u))
        if rev_c:
            common = sorted(set(auto_c) & set(rev_c))
            if common:
                fig, pl = plot_bland_altman(
                    np.array([len(schema.counted_rows(auto_c[i])) for i in common]),
                    np.array([len(schema.counted_rows(rev_c[i])) for i in common]),
                                            label="fibre crossings (count)")
                pl.insert(0, "image", common)
                save("skin_bland_altman", fig, pl)
        try:
            sec = summ.copy()
            sec["ienfd_per_mm"] = pd.to_numeric(sec["n_crossings"]) / pd.to_numeric(
                sec["epidermis_length_mm"])
            if "group" not in sec:
                sec["group"] = "all"
            if images:
                pick = _chosen(sec, images)
            else:
                pick = sorted(pick_representative(sec, "ienfd_per_mm").items())
            crossings = {**auto_c, **rev_c}
            panels = [load_panel(paths.get(img), str(results / _stem(img)), title=g, kind="skin",
                                 crossings=crossings.get(img)) for g, img in pick]
            if panels:
                fig, pl = make_montage(panels, title="Representative skin sections")
                pl.insert(0, "image", [img for _, img in pick])
                save("skin_montage", fig, pl)
        except (OSError, ValueError, KeyError) as exc:
            rep.notes.append(f"skin montage skipped: {exc}")

    if drg is None and skin is None:
        rep.notes.append(f"no drg_summary.csv or skin_summary.csv in {results}")
    if stats_parts:
        rep.stats = pd.concat(stats_parts, ignore_index=True)[hs.STATS_COLUMNS]
        rep.stats_path = write_table(rep.stats, outdir / "stats.csv")
    captions = {
        "drg_pct_igg_positive": "% IgG-positive neurons per unit; bars mean ± SEM.",
        "drg_ring_igg_by_size": "Ring IgG (ratio to local background) by neuron size class.",
        "drg_bland_altman": "IgG-positive counts per section: automatic vs reviewed.",
        "drg_montage": "Representative DRG sections; ring outlines coloured by IgG call.",
        "skin_ienfd": "IENFD per unit; bars mean ± SEM.",
        "skin_bland_altman": "Crossings per section: automatic vs reviewed.",
        "skin_montage": "Representative skin sections; DEJ, surface and counted crossings.",
    }
    rep.report_path = write_report(
        outdir / "report.html",
        [(captions.get(k, k), v) for k, v in rep.figures.items()],
        rep.stats, run, tables=montage_tables, notes=rep.notes,
        title=f"histo-fms figures: {results.name}")
    return rep
