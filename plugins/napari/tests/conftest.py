"""Fixtures: real histo-fms results folders made from phantoms (DRG) or by hand (skin)."""

import os
import shutil

import pytest
from plugin_testdata import DRG_IMAGES, make_drg_results, make_skin_results

# pytest-xvfb provides a display; napari image layers need GL (no "offscreen").
if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = "xcb"


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
