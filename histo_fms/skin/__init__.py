"""Skin: intraepidermal nerve fibre density (IENFD) by the EFNS/PNS counting rules.

Pure functions on numpy arrays (no file I/O, no dask): find the epidermis, its
surface and the dermal-epidermal junction (DEJ), trace PGP9.5 fibres, count each
fibre crossing the DEJ into the epidermis once, and divide by the length of the
epidermal surface. Coordinates are in µm from the top-left pixel centre (y down).
"""

from ._crossings import (
    SkinResult,
    analyze_skin,
    count_crossings,
    dej_depth,
    ienfd,
    qc_flag,
    recount_skin,
    summarize,
)
from ._epidermis import (
    Epidermis,
    NoEpidermisError,
    epidermis_from_polylines,
    find_epidermis,
    polyline_length,
)
from ._fibres import ridge_response, trace_fibres
from ._params import SkinParams

__all__ = [
    "Epidermis",
    "NoEpidermisError",
    "SkinParams",
    "SkinResult",
    "analyze_skin",
    "count_crossings",
    "dej_depth",
    "epidermis_from_polylines",
    "find_epidermis",
    "ienfd",
    "polyline_length",
    "qc_flag",
    "recount_skin",
    "ridge_response",
    "summarize",
    "trace_fibres",
]
