"""Lazy OME-TIFF / TIFF reading through tifffile's zarr store."""

from __future__ import annotations

import re
import struct
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tifffile

from ._errors import InputError
from ._image import ImageData, square_pixel_size

if TYPE_CHECKING:
    import dask.array as da


_UNIT_TO_UM = {
    "µm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "micrometre": 1.0, "\u03bcm": 1.0, "nanometre": 1e-3, "millimetre": 1e3, "\\u00B5m": 1.0,
    "\\u00b5m": 1.0, "micrometers": 1.0, "micrometres": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "mm": 1e3, "millimeter": 1e3, "cm": 1e4, "m": 1e6,
    "pm": 1e-6, "å": 1e-4, "a": 1e-4,
}


class _TiffLevel:
    """Picklable array-like over one series level of a TIFF file.

    Each process opens the file once, on first access, so dask tasks can be shipped to
    ``dask.distributed`` workers (the open handle is not pickled).
    """

    def __init__(self, path: Path, series: int, level: int, shape: tuple, dtype: np.dtype):
        self.path = Path(path)
        self.series = series
        self.level = level
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._z: Any = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_z"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _array(self) -> Any:
        import zarr

        with self._lock:
            if self._z is None:
                store = tifffile.imread(
                    self.path, aszarr=True, series=self.series, level=self.level
                )
                self._z = zarr.open(store, mode="r")
            return self._z

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self._array()[key])
        except Exception as exc:  # noqa: BLE001 - re-raised with the file named
            raise InputError(self.path, f"cannot read pixel data ({exc})") from exc


def _ome_pixel_size_and_names(path: Path, ome_xml: str, series: int
                              ) -> tuple[float | None, list[str]]:
    root = ET.fromstring(ome_xml)
    ns = {"ome": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
    images = root.findall("ome:Image", ns) if ns else root.findall("Image")
    if not images:
        return None, []
    image = images[min(series, len(images) - 1)]
    pixels = image.find("ome:Pixels", ns) if ns else image.find("Pixels")
    if pixels is None:
        return None, []
    sizes: dict[str, float | None] = {}
    for ax in ("X", "Y"):
        v = pixels.get(f"PhysicalSize{ax}")
        unit = pixels.get(f"PhysicalSize{ax}Unit", "µm")
        factor = _UNIT_TO_UM.get(unit.strip().lower(), _UNIT_TO_UM.get(unit.strip()))
        sizes[ax] = None if v is None or factor is None else float(v) * factor
    channels = pixels.findall("ome:Channel", ns) if ns else pixels.findall("Channel")
    names = [c.get("Name") or c.get("Fluor") or "" for c in channels]
    return square_pixel_size(path, sizes["X"], sizes["Y"]), names


def _imagej_pixel_size(path: Path, tf: tifffile.TiffFile) -> float | None:
    ij = tf.imagej_metadata or {}
    unit = str(ij.get("unit", "")).strip().lower()
    factor = _UNIT_TO_UM.get(unit)
    if factor is None:
        return None
    page = tf.pages[0]
    sizes: dict[str, float | None] = {}
    for ax in ("X", "Y"):
        res = page.tags.get(f"{ax}Resolution")
        num, den = res.value if res is not None else (0, 1)
        sizes[ax] = float(den) / float(num) * factor if num else None
    return square_pixel_size(path, sizes["X"], sizes["Y"])


_MPP = re.compile(r"\bMPP\s*=\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)")


def _slide_scanner_pixel_size(tf: tifffile.TiffFile) -> float | None:
    """Pixel size of whole-slide scans: the SVS ``MPP`` field, NDPI resolution tags."""
    page = tf.pages[0]
    desc = str(getattr(page, "description", "") or "")
    m = _MPP.search(desc)
    if m:
        return float(m.group(1))
    if getattr(tf, "is_ndpi", False):
        res, unit = page.tags.get("XResolution"), page.tags.get("ResolutionUnit")
        if res is not None and unit is not None and int(unit.value) == 3:  # centimetre
            num, den = res.value
            if num:
                return 1e4 * float(den) / float(num)
    return None


def _is_rgb(level: tifffile.TiffPageSeries) -> bool:
    """Whether a series holds RGB(A) samples (a bright-field scan or photograph)."""
    page = level.pages[0] if level.pages else None
    axes = level.axes.upper()
    if page is None or "S" not in axes:
        return False
    n = level.shape[axes.index("S")]
    # PHOTOMETRIC.RGB, or YCBCR (JPEG-compressed scans, decoded to RGB)
    return n in (3, 4) and int(getattr(page, "photometric", 0)) in (2, 6)


def _imagej_names(tf: tifffile.TiffFile, n: int) -> list[str]:
    ij = tf.imagej_metadata or {}
    labels = ij.get("Labels") or ij.get("labels")
    if isinstance(labels, (list, tuple)) and len(labels) >= n:
        return [str(x) for x in labels[:n]]
    return []


def read_tiff(
    path: str | Path,
    *,
    series: int = 0,
    level: int = 0,
    z: str | int = "max",
) -> ImageData:
    """Open an OME-TIFF or plain TIFF lazily as a (C, Y, X) dask array.

    Parameters
    ----------
    path : str or Path
        The TIFF file.
    series : int
        Which series (OME image / scene) to read.
    level : int
        Pyramid level (0 = full resolution).
    z : {"max"} or int
        Z handling for stacks: maximum-intensity projection or one plane index.

    Returns
    -------
    ImageData
        Data, channel names and pixel size (``None`` when the file has no usable
        physical pixel size: OME ``PhysicalSizeX`` or ImageJ calibration).

    Raises
    ------
    InputError
        The file is missing, not a TIFF, corrupt, empty or of unsupported layout.
    """
    import dask.array as da

    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file (0 bytes)")
    try:
        with tifffile.TiffFile(path) as tf:
            if not tf.series:
                raise InputError(path, "TIFF contains no image series")
            if series >= len(tf.series):
                raise InputError(path, f"series {series} requested but file has {len(tf.series)}")
            s = tf.series[series]
            _check_tags(path, tf, [tf.pages[0], *(s.levels[level].pages
                                                   if level < len(s.levels) else [])])
            if level >= len(s.levels):
                raise InputError(path, f"pyramid level {level} requested, file has {len(s.levels)}")
            lv = s.levels[level]
            axes, shape, dtype = lv.axes.upper(), tuple(lv.shape), lv.dtype
            pixel_size, names = None, []
            if tf.is_ome and tf.ome_metadata:
                pixel_size, names = _ome_pixel_size_and_names(path, tf.ome_metadata, series)
            if pixel_size is None and tf.is_imagej:
                pixel_size = _imagej_pixel_size(path, tf)
            if pixel_size is None:
                pixel_size = _slide_scanner_pixel_size(tf)
            rgb = _is_rgb(lv)
            is_imagej = tf.is_imagej
            _check_complete(path, lv)
            others = other_images(tf.series, series)
    except InputError:
        raise
    except (tifffile.TiffFileError, ValueError, OSError, KeyError, IndexError,
            ET.ParseError) as exc:
        raise InputError(path, f"not a readable TIFF (corrupt or truncated?): {exc}") from exc

    if 0 in shape:
        dims = dict(zip(axes, shape, strict=True))
        raise InputError(path, f"image has an empty dimension {dims}")
    arr = da.from_array(
        _TiffLevel(path, series, level, shape, dtype), chunks=_chunks(axes, shape), name=False
    )
    arr, info = _to_cyx(path, arr, axes, z)
    if rgb:
        arr = arr[:3]  # drop an alpha sample
        info["rgb"] = True
        names = ["R", "G", "B"]
    if not names or len(names) != arr.shape[0] or not all(names):
        if is_imagej and not names:
            names = []
            try:
                with tifffile.TiffFile(path) as tf:
                    names = _imagej_names(tf, arr.shape[0])
            except Exception:  # noqa: BLE001 - names are optional
                names = []
        if not names or len(names) != arr.shape[0]:
            names = [f"C{i}" for i in range(arr.shape[0])]
    info.update(series=series, level=level, original_axes=axes, original_shape=shape,
                other_series=others)
    return ImageData(path=path, data=arr, channel_names=names, pixel_size_um=pixel_size,
                     metadata=info)


def _yx_pixels(s: Any) -> int:
    """Pixels in one plane of a tifffile series (Y x X; the last two axes if unnamed)."""
    dims = dict(zip(s.axes.upper(), s.shape, strict=False))
    if "Y" in dims and "X" in dims:
        return int(dims["Y"]) * int(dims["X"])
    return int(np.prod(s.shape[-2:])) if len(s.shape) >= 2 else 0


def other_images(all_series: Any, chosen: int) -> list[int]:
    """Return the other series of a TIFF that are images in their own right.

    A series with at least a quarter of the chosen one's plane pixels is another
    section, position or scene (multi-position and multi-scene exports); smaller ones
    are a slide scanner's thumbnail, label or macro image and are not counted.
    """
    ref = _yx_pixels(all_series[chosen])
    return [i for i, t in enumerate(all_series)
            if i != chosen and ref and _yx_pixels(t) >= 0.25 * ref]


#: bytes per value of each TIFF field type
_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
               13: 4, 16: 8, 17: 8, 18: 8}
_TAG_NAMES = {270: "the ImageDescription tag (OME-XML metadata)", 273: "the strip offsets",
              279: "the strip byte counts", 324: "the tile offsets",
              325: "the tile byte counts"}


def _check_tags(path: Path, tf: tifffile.TiffFile, pages: list) -> None:
    """Fail on tag values that run past the end of the file (a cut-off download).

    tifffile drops such a tag with a logged error, so a file whose OME-XML tail is cut
    off would otherwise look like a file without a pixel size.
    """
    size = path.stat().st_size
    bo = tf.byteorder
    big = tf.is_bigtiff
    head, entry, inline = (bo + "Q", bo + "HHQQ", 8) if big else (bo + "H", bo + "HHII", 4)
    esize = struct.calcsize(entry)
    seen: set[int] = set()
    fh = tf.filehandle
    for pg in pages:
        off = getattr(pg, "offset", None)
        if off is None or off in seen:
            continue
        seen.add(off)
        fh.seek(off)
        raw = fh.read(struct.calcsize(head))
        if len(raw) < struct.calcsize(head):
            raise InputError(path, f"truncated TIFF: an image directory lies past the end of "
                                   f"the file ({size} bytes)")
        n = struct.unpack(head, raw)[0]
        if n > 4096:
            continue
        raw = fh.read(n * esize)
        if len(raw) < n * esize:
            raise InputError(path, f"truncated TIFF: an image directory runs past the end of "
                                   f"the file ({size} bytes)")
        for i in range(n):
            code, typ, count, value = struct.unpack(entry, raw[i * esize:(i + 1) * esize])
            nbytes = count * _TYPE_BYTES.get(typ, 1)
            if nbytes > inline and value + nbytes > size:
                what = _TAG_NAMES.get(code, f"TIFF tag {code}")
                raise InputError(path, f"truncated TIFF: {what} runs past the end of the file "
                                       f"({size} bytes); the file was cut off, copy it again")


def _check_complete(path: Path, level: tifffile.TiffPageSeries) -> None:
    """Fail early on truncated files: every page present, every tile inside the file."""
    size = path.stat().st_size
    pages = list(level.pages)
    if not pages or any(pg is None for pg in pages):
        raise InputError(path, "truncated or corrupt TIFF: image pages are missing")
    for pg in pages:
        offsets = getattr(pg, "dataoffsets", ()) or ()
        counts = getattr(pg, "databytecounts", ()) or ()
        for off, cnt in zip(offsets, counts, strict=False):
            if off + cnt > size or (cnt == 0 and off == 0 and len(offsets) == 1):
                raise InputError(path, "truncated TIFF: pixel data runs past the end of the "
                                       f"file ({size} bytes)")


def _chunks(axes: str, shape: tuple) -> tuple:
    out = []
    for a, n in zip(axes, shape, strict=True):
        if a in "YX":
            out.append(min(n, 2048))
        else:
            out.append(1)
    return tuple(out)


def _to_cyx(path: Path, arr: da.Array, axes: str, z: str | int) -> tuple[da.Array, dict]:
    """Reduce any tifffile axes string to (C, Y, X)."""
    info: dict = {}
    axes = re.sub("[^A-Z]", "", axes)
    if "Y" not in axes or "X" not in axes:
        raise InputError(path, f"unsupported axes {axes!r}: no Y/X plane")
    # samples (RGB) act as channels
    if "S" in axes and "C" not in axes:
        axes = axes.replace("S", "C")
    elif "S" in axes:
        i = axes.index("S")
        if arr.shape[i] > 1:
            info["S_note"] = (f"axis S of size {arr.shape[i]} besides channels: its maximum "
                              "used")
        arr = arr.max(axis=i) if arr.shape[i] > 1 else arr.squeeze(axis=i)
        axes = axes[:i] + axes[i + 1:]
    for ax in list(axes):
        if ax in "CYXZ":
            continue
        i = axes.index(ax)
        if arr.shape[i] > 1:
            info[f"{ax}_note"] = f"axis {ax} of size {arr.shape[i]}: first index used"
        arr = arr[(slice(None),) * i + (0,)]
        axes = axes[:i] + axes[i + 1:]
    if "Z" in axes:
        i = axes.index("Z")
        nz = arr.shape[i]
        if z == "max":
            arr = arr.max(axis=i)
            info["z"] = f"max projection of {nz} planes" if nz > 1 else "single plane"
        else:
            zi = int(z)
            if not 0 <= zi < nz:
                raise InputError(path, f"z plane {zi} requested, stack has {nz} planes")
            arr = arr[(slice(None),) * i + (zi,)]
            info["z"] = f"plane {zi} of {nz}"
        axes = axes[:i] + axes[i + 1:]
    if "C" not in axes:
        arr = arr[None]
        axes = "C" + axes
    order = [axes.index(a) for a in "CYX"]
    return arr.transpose(order), info
