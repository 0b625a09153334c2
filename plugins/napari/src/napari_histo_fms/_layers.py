"""Layer data (napari ``LayerDataTuple``) for images and results; no Qt, no analysis.

Every layer is in µm: images and labels carry ``scale = (px, px)``; points and shapes
are stored in µm directly. Layer names never contain file names (blinded review).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from histo_fms.review import ReviewSession
from histo_fms.schema import check_pixel_size, parse_bool

LayerData = tuple[Any, dict[str, Any], str]

UNITS = ("um", "um")
AXES = ("y", "x")
#: IgG call colours (as in the QuPath export): positive orange, negative blue.
COLOURS = {
    "positive": (213 / 255, 94 / 255, 0.0, 1.0),
    "negative": (0.0, 114 / 255, 178 / 255, 1.0),
    "unknown": (0.85, 0.85, 0.85, 1.0),
    "excluded": (0.35, 0.35, 0.35, 1.0),
    "border": (0.75, 0.6, 0.85, 1.0),
}
CHANNEL_COLOURMAPS = {
    "neun": "gray", "tubb3": "gray", "pgp9.5": "green", "pgp": "green", "gs": "green",
    "fabp7": "green", "igg": "magenta", "dapi": "blue", "hoechst": "blue", "col4": "magenta",
    "collagen iv": "magenta", "coliv": "magenta",
}
#: Layer names the plugin creates and owns.
NEURONS, RINGS, CROSSINGS, DEJ, SURFACE = "neurons", "rings", "crossings", "DEJ", "surface"
EPIDERMIS, FIBRES, EXCLUDED = "epidermis", "fibres", "excluded regions"


def _cmap(name: str, i: int) -> str:
    key = name.strip().lower()
    if key in CHANNEL_COLOURMAPS:
        return CHANNEL_COLOURMAPS[key]
    return ["gray", "green", "magenta", "cyan", "yellow", "blue"][i % 6]


def image_layer_data(path: str | Path, *, pixel_size_um: float | None = None,
                     read_kwargs: dict | None = None) -> list[LayerData]:
    """Return one image layer per channel, named by channel and scaled in µm.

    Parameters
    ----------
    path : str or Path
        A microscope image :func:`histo_fms.io.read_image` opens.
    pixel_size_um : float, optional
        Pixel size override (µm).
    read_kwargs : dict, optional
        Extra arguments of :func:`histo_fms.io.read_image` (series, z, ...).

    Returns
    -------
    list of LayerDataTuple
        ``(dask array, kwargs, "image")`` per channel (one RGB layer for a bright-field
        RGB image). An image without a pixel size
        (none in the file, none given) is shown in pixels (``units = "pixel"``,
        ``pixel_size_um`` None in the metadata), never in an assumed µm scale.
    """
    from histo_fms.io import read_image

    img = read_image(path, pixel_size_um=pixel_size_um, **(read_kwargs or {}))
    px: float | None = None
    if img.pixel_size_um is not None:
        px = check_pixel_size(img.pixel_size_um, what=f"{img.path}: pixel size")
    scale, units = ((px, px), UNITS) if px is not None else ((1.0, 1.0), ("pixel", "pixel"))
    out: list[LayerData] = []
    if img.metadata.get("rgb"):
        # a bright-field scan is shown as the RGB image it is, not three grey layers
        import dask.array as da

        return [(da.moveaxis(img.data[:3], 0, -1), {
            "name": "RGB", "scale": scale, "units": units, "axis_labels": AXES,
            "rgb": True,
            "metadata": {"histo_fms": {"channel": "RGB", "pixel_size_um": px,
                                       "path": str(img.path)}},
        }, "image")]
    levels = _pyramid(path, img, pixel_size_um, read_kwargs or {})
    computed = len(levels) > 1 and getattr(levels, "computed", False)
    for i, name in enumerate(img.channel_names):
        data = [lv[i] for lv in levels] if len(levels) > 1 else img.data[i]
        meta = {"channel": str(name), "pixel_size_um": px, "path": str(img.path)}
        if computed:
            meta["overview"] = "computed"  # no pyramid in the file: see overview_levels
        out.append((data, {
            "name": str(name), "scale": scale, "units": units, "axis_labels": AXES,
            "colormap": _cmap(str(name), i), "blending": "additive",
            "metadata": {"histo_fms": meta},
        }, "image"))
    return out


#: Levels of a computed pyramid at most this large (pixels a side) are held in memory
#: (4096² 16-bit: 32 MB a channel); larger ones are read region by region when shown.
OVERVIEW_SIDE = 4096


def overview_levels(levels: list) -> list:
    """Compute the small levels of a lazily downsampled pyramid once, in one pass.

    napari reads the smallest level of a pyramid to set the contrast and to draw a
    whole section; computed from the full-resolution image that is a pass over all of
    it, each time. This computes the first level at most :data:`OVERVIEW_SIDE` a side
    once (a pass over level 0, chunk by chunk) and the smaller ones from it, in memory.
    Call it off the GUI thread.

    Parameters
    ----------
    levels : list of array
        One channel's levels (Y x X each), as :func:`image_layer_data` gives them for an
        image without a pyramid of its own (2x block means).

    Returns
    -------
    list of array
        The same levels, those at most :data:`OVERVIEW_SIDE` a side as numpy arrays
        (the same values: the same block means).
    """
    gen = overview_steps(levels)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


def overview_steps(levels: list):
    """:func:`overview_levels` as a generator: it yields after each band of chunks.

    A thread worker running it can be stopped between bands (closing napari or opening
    another image need not wait for a pass over a whole section).

    Parameters
    ----------
    levels : list of array
        As for :func:`overview_levels`.

    Yields
    ------
    None
        After each band of rows of the level computed.

    Returns
    -------
    list of array
        As :func:`overview_levels` returns.
    """
    out = list(levels)
    k = next((i for i, lv in enumerate(out) if i and max(lv.shape[-2:]) <= OVERVIEW_SIDE),
             None)
    if k is None:
        return out
    first = out[k]
    if hasattr(first, "compute") and hasattr(first, "chunks"):
        res = np.empty(first.shape, first.dtype)
        y0 = 0
        for h in first.chunks[-2]:  # band by band: the same blocks, the same values
            res[..., y0:y0 + h, :] = np.asarray(first[..., y0:y0 + h, :].compute())
            y0 += h
            yield
        out[k] = res
    else:
        out[k] = np.asarray(first.compute() if hasattr(first, "compute") else first)
    for i in range(k + 1, len(out)):
        prev = out[i - 1].astype(np.float64)
        h, w = (prev.shape[-2] // 2) * 2, (prev.shape[-1] // 2) * 2
        prev = prev[..., :h, :w]
        mean = prev.reshape(*prev.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))
        out[i] = mean.astype(levels[i].dtype)
    return out


#: Label images larger than this (pixels) are shown without a copy: the layer shares
#: the review's array (a copy of a whole section costs seconds and a gigabyte), unless
#: their ids fit 16 bits (then the layer holds a 16-bit copy, see below).
SHARE_PIXELS = 2**22
#: Largest neuron id shown as 16-bit labels. napari draws 8- and 16-bit labels as they
#: are (the colours are a look-up table on the GPU); wider integers are converted pixel
#: by pixel to a texture at every redraw of the whole layer (seconds for a section) and
#: a colour change re-textures the neuron's pixels.
DISPLAY_MAX_ID = int(np.iinfo(np.uint16).max)


def display_dtype(labels: np.ndarray) -> np.dtype:
    """Return the dtype the neurons layer shows ``labels`` in: uint16 when every id fits.

    Parameters
    ----------
    labels : ndarray of int
        Neuron labels (non-negative).

    Returns
    -------
    numpy.dtype
        ``uint16`` when ``0 <= labels <= DISPLAY_MAX_ID``, else the labels' own dtype.
    """
    if labels.size == 0 or (labels.dtype.kind == "u" and labels.dtype.itemsize <= 2):
        return np.dtype(np.uint16)
    lo, hi = int(labels.min()), int(labels.max())
    return np.dtype(np.uint16) if 0 <= lo and hi <= DISPLAY_MAX_ID else labels.dtype


def neurons_layer_array(session: ReviewSession) -> np.ndarray:
    """Return the array the neurons layer shows.

    Parameters
    ----------
    session : ReviewSession
        A DRG session.

    Returns
    -------
    ndarray
        A 16-bit copy of the neuron labels when every id fits 16 bits (ids exact: the
        review widget writes each edit's pixels into it); else a copy, or (above
        :data:`SHARE_PIXELS` pixels) the session's array itself. The widget records
        the layer's paint strokes from napari's paint events (old values included),
        never by comparing whole arrays.
    """
    lab = session.labels["neurons"]
    small = as_uint16(lab)
    if small is not None:
        return small
    return lab if lab.size > SHARE_PIXELS else lab.copy()


def as_uint16(labels: np.ndarray) -> np.ndarray | None:
    """Return a 16-bit copy of labels when every value fits, else None (one pass).

    Parameters
    ----------
    labels : ndarray of int
        Labels (2-D).

    Returns
    -------
    ndarray of uint16 or None
    """
    lab = np.asarray(labels)
    if lab.ndim != 2:
        return lab.astype(np.uint16) if display_dtype(lab) == np.uint16 else None
    out = np.empty(lab.shape, np.uint16)
    step = max(1, 2**20 // max(lab.shape[1], 1))  # blocks of ~1 M pixels: read once

    def block(y: int) -> bool:
        blk = lab[y:y + step]
        if blk.size and (int(blk.min()) < 0 or int(blk.max()) > DISPLAY_MAX_ID):
            return False
        out[y:y + step] = blk
        return True

    starts = range(0, lab.shape[0], step)
    if lab.size < 2**24:
        ok = all(block(y) for y in starts)
    else:  # numpy releases the GIL here: the blocks on two threads
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as ex:
            ok = all(ex.map(block, starts))
    return out if ok else None


def direct_colormap(colours: dict):
    """Return a napari ``DirectLabelColormap`` for a label -> RGBA dict, built fast.

    napari validates every entry of a colour dict one by one (about a second for a
    section's 60,000 neurons); the colours here are RGBA tuples already, so the map is
    made from the background entries and the rest put in directly.

    Parameters
    ----------
    colours : dict
        Label value (and ``None``) -> RGBA in 0..1.

    Returns
    -------
    napari.utils.colormaps.DirectLabelColormap
    """
    from napari.utils.colormaps import DirectLabelColormap

    base = {None: colours.get(None, (0, 0, 0, 0)), 0: colours.get(0, (0, 0, 0, 0))}
    cm = DirectLabelColormap(color_dict=base)
    try:
        cm.color_dict.update({int(k): np.asarray(v, np.float32).reshape(4)
                              for k, v in colours.items() if k is not None and k != 0})
        cm._clear_cache()
    except Exception:  # noqa: BLE001 - napari internals changed: validate every entry
        cm = DirectLabelColormap(color_dict=dict(colours))
    _prefill_lut16(cm)
    return cm


def lut16(color_dict: dict, default) -> np.ndarray:
    """Return the colour of every 16-bit label value, (65536, 4) float32, vectorised.

    Parameters
    ----------
    color_dict : dict
        Label value -> RGBA (values outside 0..65535 and None are ignored).
    default : array_like
        RGBA of labels not in the dict.

    Returns
    -------
    ndarray of float32, shape (65536, 4)
    """
    lut = np.empty((2**16, 4), np.float32)
    lut[:] = np.asarray(default, np.float32).reshape(4)
    keys = [k for k in color_dict if k is not None and 0 <= int(k) < 2**16]
    if keys:
        lut[np.asarray(keys, np.int64)] = np.asarray([color_dict[k] for k in keys],
                                                     np.float32).reshape(-1, 4)
    return lut


def _prefill_lut16(cm) -> None:
    """Give a direct colour map its 16-bit colour table, computed with numpy.

    napari builds that table (one colour per 16-bit value, used for the GPU texture and
    the thumbnail) through a numba typed dict filled one label at a time: 6 s for a
    section's 50,000 neurons, on the GUI thread. The table is the same (each value's
    colour from the dict, the default colour for the others); napari's own code builds
    it when this one is not accepted.
    """
    try:
        from napari.utils.colormaps.colormap import _texture_dtype

        u16 = np.dtype(np.uint16)
        d = cm.color_dict
        if "_num_unique_colors" not in cm.__dict__:
            vals = np.asarray([v for v in d.values()], np.float32).reshape(-1, 4)
            cm.__dict__["_num_unique_colors"] = len(np.unique(vals, axis=0))
        key = (u16, np.dtype(_texture_dtype(cm._num_unique_colors, u16)))
        if key[1] != u16 or cm.use_selection:
            return
        cm._cache_mapping[key] = lut16(d, cm.default_color)
    except Exception:  # noqa: BLE001 - napari internals changed: napari builds the table
        return


#: Images larger than this (pixels per channel) without a pyramid in the file are shown
#: through a lazily downsampled one (napari would otherwise load the whole plane).
PYRAMID_PIXELS = 4096 * 4096
#: A computed pyramid ends at the first level at most this large (pixels a side).
PYRAMID_TOP = 2048


def _pyramid(path, img, pixel_size_um, read_kwargs) -> list:
    """Return the resolution levels of an image (lazy dask arrays, C x Y x X each).

    The file's own levels when it has them (pyramidal OME-TIFF, OME-Zarr); else, for a
    large image, 2x block means computed lazily by dask (napari reads only what it
    shows); else the one level.
    """
    from histo_fms.io import read_image

    levels = [img.data]
    if int(read_kwargs.get("level", 0) or 0) == 0:
        for k in range(1, 12):
            try:
                lv = read_image(path, pixel_size_um=pixel_size_um, **{**read_kwargs,
                                                                      "level": k})
            except Exception:  # noqa: BLE001 - no such level: the file's pyramid ends
                break
            if lv.data.shape[-2] >= levels[-1].shape[-2] or lv.data.shape[0] != img.data.shape[0]:
                break
            levels.append(lv.data)
    if len(levels) == 1 and img.data.shape[-2] * img.data.shape[-1] > PYRAMID_PIXELS:
        import dask.array as da

        cur = da.asarray(img.data)
        while max(cur.shape[-2:]) > PYRAMID_TOP:
            nxt = da.coarsen(np.mean, cur, {1: 2, 2: 2}, trim_excess=True)
            cur = nxt.astype(img.data.dtype)
            levels.append(cur)
        levels = _Levels(levels)
        levels.computed = True
    return levels


class _Levels(list):
    """A list of pyramid levels that can say whether they were computed (not read)."""

    computed = False


def neuron_colours(session: ReviewSession, table: pd.DataFrame | None = None) -> dict:
    """Return a direct label colour map: IgG call (orange/blue), grey unknown or excluded.

    Neurons touching the image border are drawn lilac when the run's summary leaves
    them out (``summary.exclude_border``).

    Parameters
    ----------
    session : ReviewSession
        A DRG session.
    table : pandas.DataFrame, optional
        The object table (:func:`histo_fms.review._triage.object_table`), if built.

    Returns
    -------
    dict
        Label value -> RGBA (``None`` and 0 transparent).
    """
    from histo_fms.review._triage import object_table

    t = object_table(session, with_deleted=False) if table is None else table
    t = t.loc[t["status"] != "deleted"]
    border_out = bool(((session.run.get("config") or {}).get("summary") or {}).get(
        "exclude_border", True))
    cols: dict = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0)}
    for nid, call, exc, border in zip(t["neuron_id"], t["call"], t["excluded"],
                                      t["touches_border"], strict=True):
        cols[int(nid)] = neuron_colour(call, bool(exc), bool(border) and border_out)
    return cols


def neuron_colour(call: str, excluded: bool, border: bool) -> tuple:
    """Return the colour of one neuron (``call`` as in the object table)."""
    if excluded:
        return COLOURS["excluded"]
    if border:
        return COLOURS["border"]
    return COLOURS[{"IgG+": "positive", "IgG−": "negative"}.get(call, "unknown")]


def neuron_features(session: ReviewSession, table: pd.DataFrame | None = None
                    ) -> pd.DataFrame:
    """Return per-label numbers for napari's status bar (``index`` = label value).

    Parameters
    ----------
    session : ReviewSession
        A DRG session.

    Returns
    -------
    pandas.DataFrame
        ``index, area_um2, diameter_um, ring_igg, igg_positive, excluded``.
    """
    from histo_fms.review._triage import object_table

    t = object_table(session, with_deleted=False) if table is None else table
    t = t.loc[t["status"] != "deleted"]
    out = pd.DataFrame({"index": t["neuron_id"].astype(np.int64).to_numpy()})
    for c in ("area_um2", "diameter_um", "ring_igg"):
        out[c] = pd.to_numeric(t[c], errors="coerce").round(3).to_numpy()
    out["igg_positive"] = t["call"].map({"IgG+": "yes", "IgG−": "no"}).fillna("").to_numpy()
    out["excluded"] = t["excluded"].astype(bool).to_numpy()
    return out


def session_layer_data(session: ReviewSession, *, with_image: bool = True,
                       table: pd.DataFrame | None = None) -> list[LayerData]:
    """Return the layers of a result: image channels, labels, crossings and lines, in µm.

    Parameters
    ----------
    session : ReviewSession
        The (possibly reviewed) result of one image.
    with_image : bool
        Also return the image channels (when the image is found).
    table : pandas.DataFrame, optional
        The object table (:func:`histo_fms.review._triage.object_table`), if built.

    Returns
    -------
    list of LayerDataTuple
        DRG: channels, ``neurons`` (coloured by IgG call, numbers as features),
        ``rings``; skin: channels, ``epidermis``, ``fibres``, ``crossings`` (points),
        ``DEJ`` and ``surface`` (paths), ``excluded regions`` (polygons).
    """
    from histo_fms.review._results import file_entry, image_path

    px = session.pixel_size_um
    out: list[LayerData] = []
    if with_image:
        try:
            entry = file_entry(session.run, session.stem)
            path = image_path(session.results_dir, entry)
        except KeyError:
            path = None
        if path is not None:
            try:
                out.extend(image_layer_data(path, pixel_size_um=px))
            except Exception:  # noqa: BLE001 - the results still show without the image
                pass
    common = {"scale": (px, px), "units": UNITS, "axis_labels": AXES}
    if session.kind == "drg":
        from histo_fms.review._triage import object_table

        if table is None:
            table = object_table(session, with_deleted=False)
        out.append((neurons_layer_array(session), {
            **common, "name": NEURONS, "colormap": neuron_colours(session, table),
            "features": neuron_features(session, table), "opacity": 0.5}, "labels"))
        if "rings" in session.labels:
            out.append((session.labels["rings"], {**common, "name": RINGS, "opacity": 0.35,
                                                  "visible": False}, "labels"))
        return out
    for name, key in ((EPIDERMIS, "epidermis"), (FIBRES, "fibres")):
        if key in session.labels:
            out.append((session.labels[key], {**common, "name": name, "opacity": 0.3,
                                              "visible": name == FIBRES}, "labels"))
    out.append(crossings_layer_data(session))
    for name, key, colour in ((DEJ, "dej", "orange"), (SURFACE, "surface", "deepskyblue")):
        v = session.polylines.get(key, np.zeros((0, 2)))
        data = [np.asarray(v, float)] if len(v) >= 2 else []
        out.append((data, {"name": name, "shape_type": "path", "edge_color": colour,
                           "edge_width": 1.5, "units": UNITS, "axis_labels": AXES},
                    "shapes"))
    out.append(([np.asarray(r, float) for r in session.excluded_regions], {
        "name": EXCLUDED, "shape_type": "polygon", "edge_color": "red",
        "face_color": [1.0, 0.0, 0.0, 0.15], "units": UNITS, "axis_labels": AXES}, "shapes"))
    return out


def crossings_layer_data(session: ReviewSession) -> LayerData:
    """Return the crossings as a points layer in µm (reviewer-added ones in yellow).

    Parameters
    ----------
    session : ReviewSession
        A skin session.

    Returns
    -------
    LayerDataTuple
        ``(points (N, 2) µm, kwargs, "points")``.
    """
    c = session.crossings
    pts = c[["y_um", "x_um"]].to_numpy(float) if len(c) else np.zeros((0, 2))
    feats = pd.DataFrame({
        "source": c["source"].astype(str).to_numpy() if len(c) else np.zeros(0, str),
        "excluded": parse_bool(c["excluded"]).to_numpy() if len(c) else np.zeros(0, bool)})
    colours = ["yellow" if s == "reviewer" else ("gray" if e else "lime")
               for s, e in zip(feats["source"], feats["excluded"], strict=True)]
    # visible in the overview: about 1/150 of the image's extent, at least 4 µm
    ext = max([float(np.ptp(pts[:, k])) for k in (0, 1)] + [0.0]) if len(pts) else 0.0
    lab = next(iter(session.labels.values()), None)
    if lab is not None:
        ext = max(ext, max(lab.shape) * session.pixel_size_um)
    return (pts, {"name": CROSSINGS, "size": max(4.0, ext / 150.0), "face_color": colours or "lime",
                  "border_color": "black", "features": feats, "units": UNITS,
                  "axis_labels": AXES}, "points")
