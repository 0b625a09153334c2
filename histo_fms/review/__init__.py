"""Review of results: edits with who/when, autosave, audit log, recompute, blinded queues.

No Qt and no napari here: the napari plugin (``napari-histo-fms``) and the CLI drive
these objects. :class:`ReviewSession` reviews one image (``OUT/STEM/reviewed/``);
:class:`ReviewQueue` walks a batch in a seeded random order under neutral case codes.
"""

from ._audit import AuditLog
from ._geometry import points_in_regions, polyline_length_um
from ._queue import Case, ReviewQueue
from ._results import read_run, result_stems
from ._session import ReviewError, ReviewSession, stale_reviews, write_reviewed_summary

__all__ = [
    "AuditLog",
    "Case",
    "ReviewError",
    "ReviewQueue",
    "ReviewSession",
    "points_in_regions",
    "polyline_length_um",
    "read_run",
    "result_stems",
    "stale_reviews",
    "write_reviewed_summary",
]
