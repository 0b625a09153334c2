"""Paper figures per animal and subject: group plots, montages, statistics and a report page.

Figures are drawn with matplotlib's object API on the Agg canvas; nothing here touches
pyplot's global state or a GUI.
"""

from ._make import FiguresReport, make_figures
from ._montage import (
    Panel,
    composite,
    contrast_limits,
    load_panel,
    make_montage,
    nice_scale_bar,
    pick_representative,
)
from ._plots import (
    OKABE_ITO,
    group_colours,
    plot_bland_altman,
    plot_ienfd,
    plot_pct_igg,
    plot_ring_igg_by_size,
    plot_unit_dots,
    save_figure,
)
from ._report import render_report, write_report

__all__ = [
    "OKABE_ITO",
    "FiguresReport",
    "Panel",
    "composite",
    "contrast_limits",
    "group_colours",
    "load_panel",
    "make_figures",
    "make_montage",
    "nice_scale_bar",
    "pick_representative",
    "plot_bland_altman",
    "plot_ienfd",
    "plot_pct_igg",
    "plot_ring_igg_by_size",
    "plot_unit_dots",
    "render_report",
    "save_figure",
    "write_report",
]
