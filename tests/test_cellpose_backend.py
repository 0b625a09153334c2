"""cellpose backend: everything around the network is tested without weights; inference
and training run only where cellpose and its weights are installed."""

import importlib.util

import numpy as np
import pytest

from histo_fms.drg import DrgParams, measure_drg
from histo_fms.segment._cellpose import (
    CellposeUnavailableError,
    clean_masks,
    diameter_px,
    normalize_image,
    resolve_model,
)
from histo_fms.synthetic.drg import make_drg_section

HAVE_CELLPOSE = importlib.util.find_spec("cellpose") is not None


def test_model_names_are_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path))
    assert resolve_model("cpsam") == ("builtin", None)
    (tmp_path / "cpsam").write_bytes(b"w")
    assert resolve_model("cpsam") == ("builtin", tmp_path / "cpsam")
    w = tmp_path / "mine.pt"
    w.write_bytes(b"w")
    assert resolve_model(str(w)) == ("path", w)
    with pytest.raises(CellposeUnavailableError, match="unknown cellpose model 'cyto9'"):
        resolve_model("cyto9")
    with pytest.raises(CellposeUnavailableError, match="not found"):
        resolve_model(str(tmp_path / "missing.pt"))


def test_diameter_from_microns():
    assert diameter_px(30.0, 0.5) == 60.0
    assert diameter_px(30.0, 0.3) == pytest.approx(100.0)
    with pytest.raises(ValueError):
        diameter_px(30.0, 0.0)


def test_normalize_image():
    img = np.linspace(100, 1100, 9999, dtype=np.float32).reshape(101, 99)
    n = normalize_image(img, dark_level=100, percentiles=(0, 100))
    assert n.min() == pytest.approx(0) and n.max() == pytest.approx(1)
    assert not normalize_image(np.full((5, 5), 7.0)).any()


def test_clean_masks_sizes_holes_and_order():
    m = np.zeros((60, 60), np.int32)
    m[40:55, 40:55] = 5      # big enough
    m[5:25, 5:25] = 9        # big enough, with a hole
    m[14:16, 14:16] = 0
    m[2:4, 50:52] = 3        # too small
    out = clean_masks(m, pixel_size_um=1.0, min_diameter_um=5.0)
    assert out.max() == 2
    assert (out[5:25, 5:25] == 1).all()          # first in raster order, hole filled
    assert (out[40:55, 40:55] == 2).all()
    assert out[2:4, 50:52].max() == 0
    out2 = clean_masks(m, pixel_size_um=1.0, min_diameter_um=5.0, max_diameter_um=20.0)
    assert out2.max() == 1 and (out2[40:55, 40:55] == 1).all()


@pytest.mark.skipif(HAVE_CELLPOSE, reason="checks the message shown when cellpose is absent")
def test_missing_cellpose_is_a_clear_error():
    ph = make_drg_section((128, 128), 0.5, seed=3)
    p = DrgParams(segmentation_backend="cellpose")
    with pytest.raises(CellposeUnavailableError, match=r"pip install 'histo-fms\[cellpose\]'"):
        measure_drg(ph.channel("NeuN"), ph.channel("IgG"), pixel_size_um=0.5, params=p)


@pytest.mark.skipif(not HAVE_CELLPOSE, reason="cellpose not installed")
def test_masks_reconstructed_from_ground_truth_flows():
    from cellpose import dynamics

    from histo_fms.segment._cellpose import masks_from_flows

    ph = make_drg_section((256, 256), 0.5, seed=5)
    truth = ph.labels
    # cellpose's own training targets: [labels, cell probability, flow y, flow x]
    target = dynamics.labels_to_flows([truth])[0]
    cellprob = np.where(target[1] > 0.5, 10.0, -10.0).astype(np.float32)
    masks = masks_from_flows(target[2:], cellprob, flow_threshold=0.0)
    # every true neuron is recovered as one mask with high IoU
    ious = []
    for i in range(1, truth.max() + 1):
        t = truth == i
        if t.sum() < 50:
            continue
        ids, counts = np.unique(masks[t], return_counts=True)
        j = ids[np.argmax(counts)]
        m = masks == j
        ious.append((t & m).sum() / (t | m).sum())
    assert np.mean(ious) > 0.9


@pytest.mark.skipif(not HAVE_CELLPOSE, reason="cellpose not installed")
def test_offline_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    from histo_fms.segment import _cellpose

    monkeypatch.setenv("CELLPOSE_LOCAL_MODELS_PATH", str(tmp_path))
    import cellpose.models

    def no_network(*a, **k):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(cellpose.models, "CellposeModel", no_network)
    _cellpose._MODEL_CACHE.clear()
    with pytest.raises(CellposeUnavailableError, match="cellpose-fetch"):
        _cellpose.load_model("cpsam", gpu=False)
