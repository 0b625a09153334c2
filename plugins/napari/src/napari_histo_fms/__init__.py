"""napari-histo-fms: run, review and correct histo-fms results in napari, blinded.

The plugin is thin: analysis lives in ``histo_fms`` and the review state (edits,
autosave, audit log, recompute, blinded queues) in ``histo_fms.review``.
"""

__version__ = "0.1.0"

from ._reader import get_image_reader, get_results_reader
from ._sample_data import make_drg_sample, make_skin_sample
from ._widget import QueueWidget, ReviewWidget, RunWidget

__all__ = [
    "QueueWidget",
    "ReviewWidget",
    "RunWidget",
    "get_image_reader",
    "get_results_reader",
    "make_drg_sample",
    "make_skin_sample",
]
