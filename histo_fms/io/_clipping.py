"""Detector clipping: pixels at the top of the camera's range carry no intensity."""

from __future__ import annotations

import numpy as np

#: ranges of common detectors stored in integer images (8-, 10-, 12-, 14-, 16-bit)
DETECTOR_MAXIMA = (255, 1023, 4095, 16383, 65535)
#: share of a channel's pixels at the detector maximum above which a run warns
CLIPPED_WARN_FRACTION = 0.001


def clipped_fraction(arr: np.ndarray) -> tuple[int | None, float]:
    """Return a channel's detector maximum and the share of its pixels at it.

    Parameters
    ----------
    arr : ndarray
        One channel of an integer image (any shape).

    Returns
    -------
    maximum : int or None
        The image's largest value when it is the top of a common detector range
        (:data:`DETECTOR_MAXIMA`, e.g. 4095 for 12-bit data stored in uint16) and at most
        the dtype's maximum; ``None`` for float images or when the largest value is not
        such a ceiling (nothing is clipped).
    fraction : float
        Share of the pixels equal to ``maximum`` (0.0 when ``maximum`` is None).
    """
    if arr.dtype.kind not in "ui" or arr.size == 0:
        return None, 0.0
    top = int(arr.max())
    if top not in DETECTOR_MAXIMA or top > np.iinfo(arr.dtype).max:
        return None, 0.0
    return top, float(np.count_nonzero(arr == top)) / arr.size


def clipping_warning(name: str, clipped: dict[str, list]) -> str | None:
    """One warning line for the roles of a file with clipped pixels, or None.

    Parameters
    ----------
    name : str
        The file's name.
    clipped : dict of str to [int, float]
        Per channel role, ``[maximum, fraction]`` from :func:`clipped_fraction`.
    """
    bad = {r: v for r, v in clipped.items()
           if v[0] is not None and v[1] > CLIPPED_WARN_FRACTION}
    if not bad:
        return None
    what = ", ".join(f"{r} {100 * f:.2f} % at {m}" for r, (m, f) in bad.items())
    return (f"{name}: pixels at the detector's maximum ({what}): their intensities are "
            "clipped, so measured intensities there are too low; image with a shorter "
            "exposure or lower gain")
