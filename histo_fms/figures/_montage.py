"""Representative sections: picking, composing and overlaying results, with scale bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from ..schema import parse_bool
from ._plots import OKABE_ITO, new_figure

#: Display colours per channel role (colour-blind safe: green / magenta / blue / grey).
CHANNEL_COLOURS = [(0.0, 1.0, 0.3), (1.0, 0.0, 1.0), (0.2, 0.5, 1.0), (0.8, 0.8, 0.8)]
CALL_COLOURS = {"positive": OKABE_ITO[0], "negative": OKABE_ITO[1], "border": "#999999"}


@dataclass
class Panel:
    """One montage panel: an image and what to draw on it.

    Attributes
    ----------
    title : str
        Panel title (the group name).
    image : ndarray, shape (C, Y, X)
        Pixels (already downsampled by ``step``).
    channel_names : list of str
        One per channel.
    pixel_size_um : float
        Pixel size of the full-resolution image.
    step : int
        Downsampling step applied to ``image``.
    rings : ndarray or None
        Ring labels (full resolution) whose ids are neuron ids.
    neurons : pandas.DataFrame or None
        ``neuron_id, igg_positive, touches_border``.
    crossings : pandas.DataFrame or None
        ``y_um, x_um``.
    lines : dict of str to ndarray
        Polylines (y, x) in µm.
    """

    title: str
    image: np.ndarray
    channel_names: list[str]
    pixel_size_um: float
    step: int = 1
    rings: np.ndarray | None = None
    neurons: pd.DataFrame | None = None
    crossings: pd.DataFrame | None = None
    lines: dict[str, np.ndarray] = field(default_factory=dict)


def pick_representative(
    sections: pd.DataFrame,
    value: str,
    *,
    group: str = "group",
) -> dict[str, str]:
    """Pick per group the section whose readout is closest to the group median.

    Parameters
    ----------
    sections : pandas.DataFrame
        One row per image (``image``, ``group``, ``value``).
    value : str
        Readout column (e.g. ``pct_igg_positive``, ``ienfd_per_mm``).
    group : str
        Group column.

    Returns
    -------
    dict of str to str
        Group -> image; ties go to the first image in name order.
    """
    t = sections.copy()
    t[value] = pd.to_numeric(t[value], errors="coerce")
    t = t[np.isfinite(t[value])].sort_values("image")
    out = {}
    for g, sub in t.groupby(group, sort=True):
        dist = (sub[value] - sub[value].median()).abs().to_numpy()
        out[str(g)] = str(sub["image"].iloc[int(np.argmin(dist))])
    return out


def contrast_limits(images: Sequence[np.ndarray], *, low: float = 0.5, high: float = 99.8
                    ) -> list[tuple[float, float]]:
    """Shared display range per channel over all panels (percentiles of pooled pixels).

    Parameters
    ----------
    images : sequence of ndarray, shape (C, Y, X)
        The panels' pixels; all must have the same channels.
    low, high : float
        Percentiles.

    Returns
    -------
    list of (float, float)
        ``(vmin, vmax)`` per channel.
    """
    nc = images[0].shape[0]
    out = []
    for c in range(nc):
        pooled = np.concatenate([np.asarray(im[c], float).ravel()[::7] for im in images])
        lo, hi = np.percentile(pooled, [low, high])
        out.append((float(lo), float(hi if hi > lo else lo + 1)))
    return out


def composite(image: np.ndarray, limits: Sequence[tuple[float, float]],
              colours: Sequence[tuple[float, float, float]] | None = None) -> np.ndarray:
    """Additive RGB composite of a (C, Y, X) image with fixed per-channel limits.

    Parameters
    ----------
    image : ndarray, shape (C, Y, X)
        Pixels.
    limits : sequence of (float, float)
        Display range per channel.
    colours : sequence of RGB tuples or None
        Colour per channel (default :data:`CHANNEL_COLOURS`).

    Returns
    -------
    ndarray, shape (Y, X, 3)
        RGB in [0, 1].
    """
    colours = colours or CHANNEL_COLOURS
    rgb = np.zeros(image.shape[1:] + (3,))
    for c in range(image.shape[0]):
        lo, hi = limits[c]
        v = np.clip((np.asarray(image[c], float) - lo) / (hi - lo), 0, 1)
        rgb += v[..., None] * np.asarray(colours[c % len(colours)])
    return np.clip(rgb, 0, 1)


def nice_scale_bar(width_um: float) -> float:
    """Return a round scale-bar length of about a fifth of the width.

    Parameters
    ----------
    width_um : float
        Image width in µm.

    Returns
    -------
    float
        Length in µm (1, 2, 5 x 10^k).
    """
    target = max(width_um / 5, 1e-3)
    k = 10 ** np.floor(np.log10(target))
    for m in (5, 2, 1):
        if m * k <= target:
            return float(m * k)
    return float(k)


def _ring_outlines(rings: np.ndarray, neurons: pd.DataFrame | None) -> dict[str, np.ndarray]:
    """Outline masks of the rings, one per IgG call, at the resolution of ``rings``."""
    from skimage.segmentation import find_boundaries

    edges = find_boundaries(rings, mode="outer")
    # an outer-boundary pixel may lie outside the ring; label it with the nearest ring id
    from skimage.segmentation import expand_labels

    ids = expand_labels(rings, 1)
    calls = {}
    pos: set[int] = set()
    bord: set[int] = set()
    if neurons is not None and len(neurons):
        pos = set(neurons.loc[_truthy(neurons.get("igg_positive")), "neuron_id"].astype(int))
        bord = set(neurons.loc[_left_out(neurons), "neuron_id"].astype(int))
    edges &= ids > 0
    is_pos = np.isin(ids, list(pos))
    is_bord = np.isin(ids, list(bord))
    calls["border"] = edges & is_bord
    calls["positive"] = edges & is_pos & ~is_bord
    calls["negative"] = edges & ~is_pos & ~is_bord
    return calls


def _truthy(s: pd.Series | None) -> np.ndarray:
    return parse_bool(s).to_numpy()


def _left_out(neurons: pd.DataFrame) -> np.ndarray:
    """Neurons not counted: touching the border or excluded by a reviewer."""
    out = _truthy(neurons.get("touches_border"))
    if "excluded" in neurons:
        out = out | _truthy(neurons["excluded"])
    return out


def make_montage(panels: Sequence[Panel], *, title: str = "") -> tuple[Figure, pd.DataFrame]:
    """Compose panels side by side with overlays, scale bars and shared contrast.

    Parameters
    ----------
    panels : sequence of Panel
        One per group; channels must match across panels.
    title : str
        Figure title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The montage.
    plotted : pandas.DataFrame
        Per panel: ``title, scale_bar_um, n_positive, n_negative, n_border, n_crossings``
        and per channel ``vmin_<name>, vmax_<name>`` (identical across panels).
    """
    if not panels:
        raise ValueError("no panels to draw")
    limits = contrast_limits([p.image for p in panels])
    n = len(panels)
    fig = new_figure(3.2 * n, 3.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    rows = []
    for ax, p in zip(axes, panels, strict=True):
        rgb = composite(p.image, limits)
        ax.imshow(rgb, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(p.title, fontsize=10)
        row: dict = {"title": p.title, "n_positive": 0, "n_negative": 0, "n_border": 0,
                     "n_crossings": 0}
        s = p.step
        px = p.pixel_size_um
        if p.rings is not None:
            outl = _ring_outlines(np.asarray(p.rings)[::s, ::s], p.neurons)
            overlay = np.zeros(p.image.shape[1:] + (4,))
            for k, mask in outl.items():
                mask = mask[: overlay.shape[0], : overlay.shape[1]]
                overlay[mask] = to_rgba(CALL_COLOURS[k])
                ax.plot([], [], color=CALL_COLOURS[k], lw=2,
                        label=f"IgG {k}" if k != "border" else "border / excluded")
            ax.imshow(overlay, interpolation="nearest")
            if p.neurons is not None and len(p.neurons):
                pos = _truthy(p.neurons.get("igg_positive"))
                bord = _left_out(p.neurons)
                row.update(n_positive=int((pos & ~bord).sum()),
                           n_negative=int((~pos & ~bord).sum()), n_border=int(bord.sum()))
        for name, line in p.lines.items():
            line = np.asarray(line, float)
            if line.size:
                ax.plot(line[:, 1] / px / s, line[:, 0] / px / s, lw=1.2,
                        color=OKABE_ITO[3] if name == "dej" else OKABE_ITO[6], label=name)
        if p.crossings is not None and len(p.crossings):
            c = p.crossings
            ax.scatter(c["x_um"] / px / s, c["y_um"] / px / s, s=30, marker="o",
                       facecolors="none", edgecolors=OKABE_ITO[0], linewidths=1.2,
                       label="crossing")
            row["n_crossings"] = len(c)
        h, w = p.image.shape[1:]
        bar = nice_scale_bar(w * s * px)
        x1 = w * 0.95
        x0 = x1 - bar / px / s
        y0 = h * 0.93
        ax.plot([x0, x1], [y0, y0], color="white", lw=3, solid_capstyle="butt")
        ax.text((x0 + x1) / 2, y0 - h * 0.02, f"{bar:g} µm", color="white", ha="center",
                va="bottom", fontsize=8)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        row["scale_bar_um"] = bar
        for name, (lo, hi) in zip(p.channel_names, limits, strict=False):
            row[f"vmin_{name}"], row[f"vmax_{name}"] = lo, hi
        rows.append(row)
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        uniq = dict(zip(labels, handles, strict=True))
        fig.legend(list(uniq.values()), list(uniq.keys()), loc="outside lower center",
                   ncols=min(5, len(uniq)), frameon=False, fontsize=8, markerscale=1)
    chans = ", ".join(f"{nm}" for nm in panels[0].channel_names)
    fig.suptitle((title + "\n" if title else "") + f"channels: {chans} (same display range "
                 "in every panel)", fontsize=9)
    plotted = pd.DataFrame(rows)
    fig.plotted = plotted  # type: ignore[attr-defined]
    return fig, plotted


def load_panel(
    image_path: str | None,
    stem_dir: str,
    *,
    title: str,
    kind: str,
    neurons: pd.DataFrame | None = None,
    crossings: pd.DataFrame | None = None,
    channels: Sequence[str] | None = None,
    max_size: int = 800,
    pixel_size_um: float | None = None,
) -> Panel:
    """Read one section and its results into a :class:`Panel` (the only IO in the montage).

    Parameters
    ----------
    image_path : str or None
        The input image; when missing or unreadable, the labels are shown instead.
    stem_dir : str
        ``OUT/STEM``.
    title : str
        Panel title.
    kind : str
        ``"drg"`` or ``"skin"``.
    neurons, crossings : pandas.DataFrame or None
        Tables to draw.
    channels : sequence of str or None
        Channel names to show (default: the first three).
    max_size : int
        Longest displayed side in pixels (downsampled by striding).
    pixel_size_um : float or None
        Pixel size (µm) of the run; default the one recorded in ``labels.zarr``, else
        the image's metadata. It places the tables' µm coordinates and the scale bar,
        so the run's value wins over the file's (a run given ``--pixel-size``).

    Returns
    -------
    Panel
        Ready for :func:`make_montage`.
    """
    from pathlib import Path

    from histo_fms.io import read_image, read_labels_scale, read_labels_zarr, read_polylines

    stem = Path(stem_dir)
    labels: Mapping[str, np.ndarray] = {}
    zpath = stem / "labels.zarr"
    if zpath.exists():
        labels = read_labels_zarr(zpath)
        if pixel_size_um is None:
            pixel_size_um = read_labels_scale(zpath)
    img = None
    names: list[str] = []
    if image_path and Path(image_path).exists():
        im = read_image(image_path)
        if pixel_size_um is None:  # the run's pixel size (labels.zarr) wins over the file's
            pixel_size_um = im.pixel_size_um
        sel = list(range(len(im.channel_names)))
        if channels:
            sel = [im.channel_names.index(c) for c in channels if c in im.channel_names] or sel
        sel = sel[:3]
        shape = im.shape_yx
        step = max(1, int(np.ceil(max(shape) / max_size)))
        img = np.asarray(im.data[sel, ::step, ::step])
        names = [im.channel_names[i] for i in sel]
    else:
        lab = labels.get("rings" if kind == "drg" else "epidermis")
        if lab is None:
            raise FileNotFoundError(f"neither the image nor labels exist for {stem_dir}")
        step = max(1, int(np.ceil(max(lab.shape) / max_size)))
        img = (np.asarray(lab)[None, ::step, ::step] > 0).astype(float)
        names = ["labels"]
    lines = {}
    if kind == "skin" and (stem / "polylines.json").exists():
        lines = read_polylines(stem / "polylines.json")
    rings = labels.get("rings") if kind == "drg" else None
    if pixel_size_um is None or not float(pixel_size_um) > 0:
        raise ValueError(f"{stem.name}: no pixel size for the panel's scale bar (no "
                         "labels.zarr and none in the image's metadata)")
    return Panel(title=title, image=img, channel_names=names,
                 pixel_size_um=float(pixel_size_um), step=step,
                 rings=None if rings is None else np.asarray(rings), neurons=neurons,
                 crossings=crossings, lines=lines)
