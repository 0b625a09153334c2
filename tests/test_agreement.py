import numpy as np
import pytest

from histo_fms.stats._agreement import bland_altman, icc_a1

# Shrout & Fleiss (1979), Psychol Bull 86:420, Table 2: 6 targets rated by 4 judges.
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9],
               [6, 2, 4, 7]], float)


def test_icc_shrout_fleiss_published():
    # published ICC(2,1) = 0.29 (= McGraw & Wong ICC(A,1)); exact value 0.28976
    assert icc_a1(SF) == pytest.approx(0.2898, abs=5e-4)


def _icc_by_variance_components(y):
    """Independent route: ANOVA via explicit sums of squares of a long-format table."""
    n, k = y.shape
    g = y.mean()
    ss_tot = ((y - g) ** 2).sum()
    ss_r = sum(k * (y[i].mean() - g) ** 2 for i in range(n))
    ss_c = sum(n * (y[:, j].mean() - g) ** 2 for j in range(k))
    ss_e = ss_tot - ss_r - ss_c
    msr, msc, mse = ss_r / (n - 1), ss_c / (k - 1), ss_e / ((n - 1) * (k - 1))
    s2_subj = (msr - mse) / k
    s2_rater = (msc - mse) / n
    return s2_subj / (s2_subj + s2_rater + mse)


def test_icc_matches_variance_components():
    rng = np.random.default_rng(1)
    truth = rng.uniform(2, 40, 30)
    y = np.stack([truth + rng.normal(0, 2, 30), truth + 1.5 + rng.normal(0, 2, 30)], 1)
    assert icc_a1(y) == pytest.approx(_icc_by_variance_components(y), rel=1e-12)


def test_icc_absolute_agreement_penalises_offset():
    x = np.arange(10.0)
    assert icc_a1(np.stack([x, x], 1)) == pytest.approx(1.0)
    assert icc_a1(np.stack([x, x + 5], 1)) < 0.8


def test_icc_rejects_bad_input():
    with pytest.raises(ValueError):
        icc_a1([1, 2, 3])


def test_bland_altman():
    a = np.array([10.0, 12, 14, 16])
    b = np.array([9.0, 12, 13, 17])
    ba = bland_altman(a, b)
    d = a - b
    assert ba["bias"] == pytest.approx(d.mean())
    assert ba["sd"] == pytest.approx(d.std(ddof=1))
    assert ba["upper"] == pytest.approx(d.mean() + 1.96 * d.std(ddof=1))
    assert ba["lower"] == pytest.approx(d.mean() - 1.96 * d.std(ddof=1))
    assert ba["n"] == 4
