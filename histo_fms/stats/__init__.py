"""Statistics: per-animal aggregation, group comparisons, mixed models and agreement.

Every test runs on one value per unit (animal, subject or image), never on neurons
or sections as if they were independent.
"""

from ._aggregate import (
    aggregate_drg,
    aggregate_skin,
    apply_sample_sheet,
    pool_neurons,
    resolve_unit,
)
from ._agreement import bland_altman, icc_a1
from ._mixed import mixed_model_ring_igg
from ._tests import (
    STATS_COLUMNS,
    cliffs_delta,
    compare_groups,
    hodges_lehmann,
    holm,
    mann_whitney,
)

__all__ = [
    "STATS_COLUMNS",
    "aggregate_drg",
    "aggregate_skin",
    "apply_sample_sheet",
    "bland_altman",
    "cliffs_delta",
    "compare_groups",
    "hodges_lehmann",
    "holm",
    "icc_a1",
    "mann_whitney",
    "mixed_model_ring_igg",
    "pool_neurons",
    "resolve_unit",
]
