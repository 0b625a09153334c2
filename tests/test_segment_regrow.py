"""Outlines against a blurred SGC sheath: the cut pixels given back to the soma."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from histo_fms.segment import segment_classical
from histo_fms.segment._classical import regrow_into_sheath
from histo_fms.synthetic.drg import WIDEFIELD, make_drg_section
from histo_fms.validation import score_image


def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def test_regrow_gives_back_only_cut_pixels_above_half_level():
    lab = np.zeros((20, 30), np.int32)
    lab[5:15, 5:12] = 1
    lab[5:15, 16:23] = 2
    contrast = np.where(lab > 0, 1.0, 0.0).astype(np.float32)
    contrast[:, 12] = 0.6   # above half the neurons' level: soma edge
    contrast[:, 13] = 0.4   # below it: sheath
    contrast[:, 15] = 0.6
    cut = np.zeros(lab.shape, bool)
    cut[:, 12:16] = True
    out = regrow_into_sheath(lab, contrast, cut, 1.0)
    # column 12 joins neuron 1 and 15 neuron 2 (rows beside them only: within 1 px)
    assert np.all(out[5:15, 12] == 1) and np.all(out[5:15, 15] == 2)
    assert not out[:, 13].any() and not out[:, 14].any()
    assert not out[:5, 12].any() and not out[15:, 12].any()
    # nothing changes owner, nothing outside the cut grows
    assert np.all(out[lab > 0] == lab[lab > 0])
    assert np.array_equal(out[~cut], lab[~cut])
    assert np.array_equal(regrow_into_sheath(lab, contrast, np.zeros_like(cut), 3.0), lab)


def test_sheathed_soma_outline_at_its_membrane():
    # a 30 µm soma wrapped in a 2 µm sheath, both blurred by 1 µm at 0.5 µm/px: the
    # cut alone leaves the outline about one blur width inside the membrane
    px, shape = 0.5, (160, 160)
    soma = _disc(shape, 80, 80, 30)
    sheath = _disc(shape, 80, 80, 34) & ~soma
    neuron = ndi.gaussian_filter(np.where(soma, 1000.0, 100.0), 2.0)
    sgc = ndi.gaussian_filter(np.where(sheath, 1000.0, 100.0), 2.0)
    d = {}
    for regrow in (False, True):
        lab = segment_classical(neuron, pixel_size_um=px, channels={"sgc": sgc},
                                sheath_regrow=regrow)
        assert lab.max() == 1
        d[regrow] = 2 * np.sqrt((lab > 0).sum() / np.pi) * px
    true_d = 2 * np.sqrt(soma.sum() / np.pi) * px
    assert d[False] < true_d - 0.5          # the bias this fixes
    assert abs(d[True] - true_d) < abs(d[False] - true_d) - 0.4
    assert abs(d[True] - true_d) < 0.5


def test_widefield_phantom_outlines_closer_to_truth():
    ph = make_drg_section((384, 384), 0.9, seed=1101, **WIDEFIELD)
    ch = {k: ph.channel(k) for k in ph.channel_names}
    rows = {}
    for regrow in (False, True):
        lab = segment_classical(ch["NeuN"], pixel_size_um=0.9, channels={"sgc": ch["GS"]},
                                sheath_regrow=regrow)
        rows[regrow] = score_image(lab, ph.labels, pixel_size_um=0.9).row
    assert rows[True]["n_matched"] >= rows[False]["n_matched"]
    assert rows[True]["median_iou"] > rows[False]["median_iou"]
    assert abs(rows[True]["diameter_bias_um"]) < abs(rows[False]["diameter_bias_um"])
