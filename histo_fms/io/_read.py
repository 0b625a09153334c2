"""Open any supported microscope image by its file type."""

from __future__ import annotations

from pathlib import Path

from ..schema import check_pixel_size, image_key
from ._bioio import read_bioio
from ._errors import InputError
from ._image import SQUARE_PIXEL_RTOL, ImageData
from ._omezarr import read_omezarr
from ._photo import read_photo
from ._tiff import read_tiff

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf2", ".tf8", ".svs", ".ndpi")
BIOIO_SUFFIXES = (".czi", ".nd2", ".lif")
ZARR_SUFFIXES = (".zarr",)
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGE_SUFFIXES = TIFF_SUFFIXES + BIOIO_SUFFIXES + ZARR_SUFFIXES + PHOTO_SUFFIXES


def image_stem(path: str | Path) -> str:
    """Return a file's name without its extensions (``a.ome.tif`` -> ``a``).

    Parameters
    ----------
    path : str or Path
        The image file.

    Returns
    -------
    str
        The stem used to name the output folder.
    """
    return image_key(path)


def is_image_file(path: str | Path) -> bool:
    """Return True when ``path`` has a supported image extension.

    Parameters
    ----------
    path : str or Path
        Candidate file.

    Returns
    -------
    bool
        Whether :func:`read_image` would try to open it.
    """
    return Path(path).name.lower().endswith(IMAGE_SUFFIXES)


def read_image(
    path: str | Path,
    *,
    series: int = 0,
    level: int = 0,
    z: str | int = "max",
    pixel_size_um: float | None = None,
    reader: str = "auto",
) -> ImageData:
    """Open a microscope image lazily as (C, Y, X) with channel names and pixel size.

    Parameters
    ----------
    path : str or Path
        OME-TIFF / TIFF (incl. SVS and NDPI slide scans), OME-Zarr image folder, CZI /
        ND2 / LIF file, or a JPEG / PNG photograph (RGB files are read as channels
        ``R, G, B`` with ``metadata["rgb"]`` set).
    series : int
        Series / scene index.
    level : int
        Pyramid level.
    z : {"max"} or int
        Z handling: maximum projection or one plane.
    pixel_size_um : float, optional
        Override of the file's pixel size, in µm.
    reader : {"auto", "bioio"}
        ``"auto"``: tifffile for TIFF, zarr for OME-Zarr, bioio for CZI/ND2/LIF;
        ``"bioio"``: bioio for every file (any format a bioio plugin reads).

    Returns
    -------
    ImageData
        The lazily read image.

    Raises
    ------
    InputError
        Unsupported type, unreadable or corrupt file, or a bad override.
    """
    path = Path(path)
    name = path.name.lower()
    if reader not in ("auto", "bioio"):
        raise InputError(path, f"unknown reader {reader!r}: use 'auto' or 'bioio'")
    if name.endswith(TIFF_SUFFIXES) and reader == "auto":
        img = read_tiff(path, series=series, level=level, z=z)
    elif name.endswith(ZARR_SUFFIXES) or (path.is_dir() and (path / ".zattrs").exists()) or (
            path.is_dir() and (path / "zarr.json").exists()):
        if not path.exists():
            raise InputError(path, "file not found")
        img = read_omezarr(path, level=level, z=z)
    elif name.endswith(PHOTO_SUFFIXES) and reader == "auto":
        img = read_photo(path)
    elif name.endswith(BIOIO_SUFFIXES) or reader == "bioio":
        img = read_bioio(path, series=series, z=z)
    else:
        raise InputError(path, f"unsupported file type {path.suffix!r}")
    if pixel_size_um is not None:
        try:
            check_pixel_size(pixel_size_um, what="pixel size override")
        except ValueError as exc:
            raise InputError(path, str(exc)) from None
        img.metadata["pixel_size_source"] = "override"
        img.metadata["file_pixel_size_um"] = img.pixel_size_um
        img.pixel_size_um = float(pixel_size_um)
    elif img.pixel_size_um is not None:
        img.metadata["pixel_size_source"] = "file metadata"
    return img


def require_pixel_size(img: ImageData) -> float:
    """Return the image's pixel size in µm, or raise a clear error when there is none.

    Parameters
    ----------
    img : ImageData
        An opened image.

    Returns
    -------
    float
        Pixel size in µm.

    Raises
    ------
    InputError
        The file has no pixel size and no override was given, or its pixel size is
        outside the plausible 0.01-50 µm.
    """
    if img.pixel_size_um is None or not img.pixel_size_um > 0:
        raise InputError(
            img.path,
            "no pixel size in the file's metadata; give it with --pixel-size UM "
            "(or pixel_size_um: in the pipeline config)",
        )
    src = img.metadata.get("pixel_size_source", "file metadata")
    try:
        return check_pixel_size(img.pixel_size_um, what=f"pixel size ({src})")
    except ValueError as exc:
        raise InputError(img.path, f"{exc}; give the right one with --pixel-size UM") from None


def override_mismatch_warning(name: str, used_um: float, file_um: float | None) -> str | None:
    """One warning line when a pixel-size override differs from the file's own, or None.

    An override (``--pixel-size``, ``pixel_size_um:`` in a config) is used as given; a
    config copied from another project and left with its pixel size would otherwise
    scale every area by the square of the ratio without a word.

    Parameters
    ----------
    name : str
        The file's name.
    used_um : float
        The pixel size used (the override), µm.
    file_um : float or None
        The pixel size in the file's metadata (None: the file has none).
    """
    if file_um is None or not file_um > 0 or abs(used_um - file_um) <= SQUARE_PIXEL_RTOL * file_um:
        return None
    return (f"{name}: pixel size override {used_um:g} µm differs from the file's own "
            f"{file_um:g} µm (areas scale by {(used_um / file_um) ** 2:.3g}x); the override is "
            "used: remove it if the file is right")


def other_series_warning(name: str, chosen: int, others: list[int] | None) -> str | None:
    """One warning line when a file holds other images than the one measured, or None.

    Parameters
    ----------
    name : str
        The file's name.
    chosen : int
        The series / scene measured (``image.series``).
    others : list of int or None
        The file's other series that are images in their own right (other sections,
        positions or scenes; see :func:`histo_fms.io._tiff.other_images`).
    """
    if not others:
        return None
    listed = ", ".join(str(i) for i in others[:10]) + (", ..." if len(others) > 10 else "")
    return (f"{name}: holds {len(others) + 1} images (series / scenes); only series {chosen} "
            f"was measured, not {listed}: measure each with image.series (or split the file)")
