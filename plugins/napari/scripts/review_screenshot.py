"""Make ``docs/review_widget.png``: the review widget on a DRG phantom, headless.

Run under a display (e.g. ``xvfb-run -a -s "-screen 0 1600x1000x24"``)::

    python plugins/napari/scripts/review_screenshot.py docs/review_widget.png
"""

import sys
import tempfile
from pathlib import Path

import napari
from histo_fms.batch import run_pipeline
from histo_fms.config import load_config
from histo_fms.io import write_ome_tiff
from histo_fms.synthetic.drg import make_drg_section
from qtpy.QtWidgets import QApplication

from napari_histo_fms import ReviewWidget


def main(dest: str) -> None:
    """Run the DRG pipeline on a phantom, open the review widget, save a screenshot."""
    tmp = Path(tempfile.mkdtemp())
    ph = make_drg_section((512, 512), 0.5, seed=11, positive_fraction=0.5)
    img = write_ome_tiff(ph.image, tmp / "drg_sample.ome.tif", channel_names=ph.channel_names,
                         pixel_size_um=0.5)
    cfg = load_config(None, pipeline="drg", overrides={
        "channels": {"neuron": "NeuN", "igg": "IgG", "sgc": "GS", "nuclei": "DAPI"},
        "parallel": {"scheduler": "synchronous"}, "calibration": {"threshold": 1.5}})
    out = tmp / "results"
    run_pipeline(cfg, [img], out)
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1500, 950)
    w = ReviewWidget(viewer)
    viewer.window.add_dock_widget(w, name="Review results", area="right")
    w.results_edit.setText(str(out))
    w._fill_images()
    w.reviewer_edit.setText("AB")
    w._open_clicked()
    for name in ("GS", "DAPI"):
        viewer.layers[name].visible = False
    s = w.session
    interior = s.table.loc[~s.table["touches_border"], "neuron_id"].astype(int).tolist()
    w.delete_neuron(interior[-1])
    viewer.layers["neurons"].selected_label = interior[2]
    w.flip_call(interior[2])
    w.recompute()
    viewer.layers.selection.active = viewer.layers["neurons"]
    viewer.reset_view()
    for _ in range(5):
        QApplication.processEvents()
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    for toast in viewer.window._qt_window.findChildren(NapariQtNotification):
        toast.close()
    for _ in range(5):
        QApplication.processEvents()
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(dest, canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/review_widget.png")
