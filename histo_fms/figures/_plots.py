"""Group plots (object API, Agg): per-unit dots with mean +/- SEM, distributions, agreement."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Okabe-Ito colour-blind safe palette (black last, used for reference lines).
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
             "#000000"]
SIZE_ORDER = ["small", "medium", "large"]


def group_colours(groups: Sequence[str]) -> dict[str, str]:
    """Map groups to Okabe-Ito colours, in order.

    Parameters
    ----------
    groups : sequence of str
        Group names.

    Returns
    -------
    dict of str to str
        Group -> hex colour.
    """
    return {g: OKABE_ITO[i % (len(OKABE_ITO) - 1)] for i, g in enumerate(groups)}


def new_figure(width: float = 4.0, height: float = 3.5) -> Figure:
    """Create a Figure on an Agg canvas (no pyplot state).

    Parameters
    ----------
    width, height : float
        Size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, already attached to an Agg canvas.
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _jitter(n: int, width: float = 0.12) -> np.ndarray:
    if n <= 1:
        return np.zeros(n)
    return np.linspace(-width, width, n)


def plot_unit_dots(
    table: pd.DataFrame,
    value: str,
    *,
    ylabel: str,
    unit: str,
    title: str = "",
    group: str = "group",
    groups: Sequence[str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Plot one dot per unit and mean +/- SEM per group.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per unit.
    value : str
        Column plotted.
    ylabel : str
        Y-axis label, with units.
    unit : str
        The unit's name (``animal``, ``subject``, ``image``), for the n labels.
    title : str
        Axes title.
    group : str
        Group column.
    groups : sequence of str or None
        Group order (default sorted).

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    plotted : pandas.DataFrame
        Per group: ``group, n, mean, sem`` as drawn (SEM with ddof 1; NaN for n < 2).
    """
    t = table.copy()
    t[value] = pd.to_numeric(t[value], errors="coerce")
    t = t[np.isfinite(t[value])]
    if groups is None:
        groups = sorted(t[group].astype(str).unique())
    colours = group_colours(groups)
    fig = new_figure(max(2.6, 1.1 * len(groups) + 1.2), 3.6)
    ax = fig.add_subplot()
    rows = []
    for i, g in enumerate(groups):
        v = t.loc[t[group].astype(str) == g, value].to_numpy(float)
        n = v.size
        mean = float(v.mean()) if n else np.nan
        sem = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
        rows.append({"group": g, "n": n, "mean": mean, "sem": sem})
        if n:
            ax.bar(i, mean, width=0.6, color=colours[g], alpha=0.35, edgecolor=colours[g])
            ax.errorbar(i, mean, yerr=0 if np.isnan(sem) else sem, color="black", capsize=5,
                        lw=1.2)
            ax.scatter(i + _jitter(n), np.sort(v), s=28, color=colours[g], edgecolor="black",
                       linewidths=0.6, zorder=3)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{g}\nn={r['n']} {unit}s" for g, r in zip(groups, rows, strict=True)])
    ax.set_ylabel(ylabel)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylim(bottom=0)
    ax.spines[["top", "right"]].set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    plotted = pd.DataFrame(rows, columns=["group", "n", "mean", "sem"])
    fig.plotted = plotted  # type: ignore[attr-defined]
    return fig, plotted


def plot_pct_igg(per_unit: pd.DataFrame, *, groups: Sequence[str] | None = None
                 ) -> tuple[Figure, pd.DataFrame]:
    """Plot % IgG-positive neurons per group, one dot per unit.

    Parameters
    ----------
    per_unit : pandas.DataFrame
        From :func:`histo_fms.stats.aggregate_drg`.
    groups : sequence of str or None
        Group order.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    plotted : pandas.DataFrame
        ``group, n, mean, sem`` of ``pct_igg_positive``.
    """
    unit = str(per_unit["unit"].iloc[0]) if len(per_unit) else "unit"
    return plot_unit_dots(per_unit, "pct_igg_positive", ylabel="IgG-positive neurons (%)",
                          unit=unit, title=f"SGC-ring IgG, per {unit} (mean ± SEM)",
                          groups=groups)


def plot_ienfd(per_unit: pd.DataFrame, *, groups: Sequence[str] | None = None
               ) -> tuple[Figure, pd.DataFrame]:
    """Plot IENFD per group, one dot per unit.

    Parameters
    ----------
    per_unit : pandas.DataFrame
        From :func:`histo_fms.stats.aggregate_skin`.
    groups : sequence of str or None
        Group order.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    plotted : pandas.DataFrame
        ``group, n, mean, sem`` of ``ienfd_per_mm``.
    """
    unit = str(per_unit["unit"].iloc[0]) if len(per_unit) else "unit"
    return plot_unit_dots(per_unit, "ienfd_per_mm", ylabel="IENFD (fibres/mm)", unit=unit,
                          title=f"Intraepidermal nerve fibre density, per {unit}",
                          groups=groups)


def plot_ring_igg_by_size(
    neurons: pd.DataFrame,
    *,
    unit: str = "animal",
    groups: Sequence[str] | None = None,
) -> tuple[Figure, pd.DataFrame]:
    """Plot ring-IgG ratio distributions by neuron size class, per group.

    Boxes show all neurons; overlaid dots are per-unit medians (the values to compare).

    Parameters
    ----------
    neurons : pandas.DataFrame
        From :func:`histo_fms.stats.pool_neurons` (``ring_igg, size_class, group, unit_id``).
    unit : str
        The unit's name, for labels.
    groups : sequence of str or None
        Group order.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    plotted : pandas.DataFrame
        Per group and size class: ``group, size_class, n_neurons, n_units,
        median_ring_igg`` (over neurons), ``mean_unit_median`` (mean of unit medians).
    """
    t = neurons.copy()
    t["ring_igg"] = pd.to_numeric(t["ring_igg"], errors="coerce")
    t = t[np.isfinite(t["ring_igg"])]
    if "size_class" not in t:
        t["size_class"] = "all"
    t["size_class"] = t["size_class"].astype(str)
    sizes = [s for s in SIZE_ORDER if s in set(t["size_class"])]
    sizes += sorted(set(t["size_class"]) - set(sizes))
    if groups is None:
        groups = sorted(t["group"].astype(str).unique())
    colours = group_colours(groups)
    fig = new_figure(max(3.5, 1.2 * len(sizes) * max(1, len(groups)) * 0.6 + 1.5), 3.6)
    ax = fig.add_subplot()
    ng = max(1, len(groups))
    w = 0.8 / ng
    rows = []
    for si, s in enumerate(sizes):
        for gi, g in enumerate(groups):
            sel = t[(t["size_class"] == s) & (t["group"].astype(str) == g)]
            pos = si + (gi - (ng - 1) / 2) * w
            v = sel["ring_igg"].to_numpy(float)
            um = sel.groupby("unit_id")["ring_igg"].median() if len(sel) else pd.Series([])
            rows.append({"group": g, "size_class": s, "n_neurons": v.size, "n_units": um.size,
                         "median_ring_igg": float(np.median(v)) if v.size else np.nan,
                         "mean_unit_median": float(um.mean()) if um.size else np.nan})
            if v.size == 0:
                continue
            bp = ax.boxplot(v, positions=[pos], widths=w * 0.8, showfliers=False,
                            patch_artist=True, manage_ticks=False)
            for b in bp["boxes"]:
                b.set(facecolor=colours[g], alpha=0.45, edgecolor=colours[g])
            for k in ("medians", "whiskers", "caps"):
                for ln in bp[k]:
                    ln.set(color="black", lw=0.8)
            ax.scatter(pos + _jitter(um.size, w * 0.25), um.to_numpy(), s=16,
                       color=colours[g], edgecolor="black", linewidths=0.5, zorder=3)
    ax.axhline(1.0, color="0.5", lw=0.7, ls="--")
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels(sizes)
    ax.set_xlabel("neuron size class")
    ax.set_ylabel("ring IgG (ratio to local background)")
    handles = [ax.scatter([], [], color=colours[g], edgecolor="black", label=g) for g in groups]
    if handles:
        ax.legend(handles=handles, loc="upper right", frameon=False, fontsize=8,
                  title=f"dots: {unit} medians", title_fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    plotted = pd.DataFrame(rows)
    tot = plotted.groupby("group")[["n_neurons"]].sum()["n_neurons"] if len(plotted) else {}
    ax.set_title("Ring IgG by size class; neurons per group: "
                 + ", ".join(f"{g} {int(tot.get(g, 0))}" for g in groups), fontsize=9)
    fig.plotted = plotted  # type: ignore[attr-defined]
    return fig, plotted


def plot_bland_altman(
    automatic: np.ndarray,
    reviewed: np.ndarray,
    *,
    label: str,
    unit: str = "section",
) -> tuple[Figure, pd.DataFrame]:
    """Bland-Altman plot of automatic minus reviewed values.

    Parameters
    ----------
    automatic, reviewed : array_like
        Paired values (one per section or unit).
    label : str
        What was measured, with units (e.g. ``"IgG-positive neurons (count)"``).
    unit : str
        What one point is.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    plotted : pandas.DataFrame
        ``mean, difference`` per point; ``plotted.attrs`` holds the bias and limits.
    """
    from histo_fms.stats import bland_altman

    a = np.asarray(automatic, dtype=float)
    b = np.asarray(reviewed, dtype=float)
    ba = bland_altman(a, b)
    m, d = (a + b) / 2, a - b
    fig = new_figure(4.0, 3.4)
    ax = fig.add_subplot()
    ax.scatter(m, d, s=24, color=OKABE_ITO[4], edgecolor="black", linewidths=0.5)
    ax.axhline(ba["bias"], color="black", lw=1, label=f"bias {ba['bias']:.3g}")
    if np.isfinite(ba["sd"]):
        for key in ("lower", "upper"):
            ax.axhline(ba[key], color=OKABE_ITO[5], lw=1, ls="--")
        ax.text(1.0, ba["upper"], " +1.96 SD", va="bottom", ha="right", fontsize=7,
                transform=ax.get_yaxis_transform())
        ax.text(1.0, ba["lower"], " -1.96 SD", va="top", ha="right", fontsize=7,
                transform=ax.get_yaxis_transform())
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel(f"mean of automatic and reviewed\n{label}")
    ax.set_ylabel("automatic - reviewed")
    ax.set_title(f"Automatic vs reviewed (n={ba['n']} {unit}s)", fontsize=10)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    plotted = pd.DataFrame({"mean": m, "difference": d})
    plotted.attrs.update(ba)
    fig.plotted = plotted  # type: ignore[attr-defined]
    return fig, plotted


def save_figure(fig: Figure, path_stem: str | Path, formats: Sequence[str] = ("svg", "pdf", "png"),
                *, dpi: int = 200) -> list[Path]:
    """Save a figure in each format (``path_stem.<fmt>``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path_stem : str or Path
        Destination without suffix.
    formats : sequence of str
        Any of ``svg``, ``pdf``, ``png`` (and other formats matplotlib writes).
    dpi : int
        Resolution of raster output.

    Returns
    -------
    list of Path
        The files written.
    """
    from histo_fms.io import atomic_path

    out = []
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    for fmt in formats:
        fmt = fmt.strip().lower().lstrip(".")
        p = stem.with_name(f"{stem.name}.{fmt}")
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_metadata(fmt))
        out.append(p)
    return out


def _metadata(fmt: str) -> dict | None:
    # no timestamps in vector output, so reruns give identical files
    return {"png": {"Software": "histo-fms"}, "pdf": {"Creator": "histo-fms", "CreationDate": None},
            "svg": {"Creator": "histo-fms", "Date": None}}.get(fmt)
