"""The plugin's dock widgets (run, review, blinded queue)."""

from ._queue_widget import QueueWidget
from ._review_widget import ReviewWidget
from ._run_widget import RunWidget

__all__ = ["QueueWidget", "ReviewWidget", "RunWidget"]
