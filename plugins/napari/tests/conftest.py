"""Fixtures: real histo-fms results folders made from phantoms (DRG) or by hand (skin)."""

import gc
import os
import shutil

import pytest
from plugin_testdata import DRG_IMAGES, make_drg_results, make_skin_results

# pytest-xvfb provides a display; napari image layers need GL (no "offscreen").
if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = "xcb"


@pytest.fixture(autouse=True)
def _gc_frozen_before_each_test():
    """Collect the garbage left so far, then freeze the survivors out of the cyclic GC.

    napari runs a full ``gc.collect()`` on every layer removal and viewer close; in one
    session with the core tests that walks every object alive (seconds per call on 2
    cores). Frozen objects are still freed by reference counting; what a test creates
    stays collectable, so napari's leak checks see the same viewers as before.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def drg_master(tmp_path_factory):
    return make_drg_results(tmp_path_factory.mktemp("drg1"))


@pytest.fixture
def drg_out(drg_master, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(drg_master, out)
    return out


@pytest.fixture(scope="session")
def batch_master(tmp_path_factory):
    return make_drg_results(tmp_path_factory.mktemp("batch"), stems=tuple(DRG_IMAGES))


@pytest.fixture
def skin_out(tmp_path):
    return make_skin_results(tmp_path / "skin")


@pytest.fixture
def opened(make_napari_viewer, drg_out):
    """A docked review widget with the DRG phantom's image open for review (blinding key "AB")."""
    from napari_histo_fms import ReviewWidget

    viewer = make_napari_viewer()
    w = ReviewWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.open_session(drg_out, "drgimg_m1_fms", "AB")
    return viewer, w, drg_out
