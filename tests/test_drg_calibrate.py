import numpy as np
import pandas as pd
import pytest

from histo_fms.drg import calibrate_threshold, call_igg, summarize_section


def test_calibrate_percentile_and_nan():
    v = np.r_[np.linspace(0.9, 1.1, 101), np.nan]
    assert calibrate_threshold(v) == pytest.approx(np.percentile(v[:-1], 99))
    assert calibrate_threshold(v, percentile=50) == pytest.approx(1.0)
    assert calibrate_threshold(pd.Series([1.2])) == 1.2


@pytest.mark.parametrize("bad", [[], [np.nan, np.nan], np.array([])])
def test_calibrate_needs_controls(bad):
    with pytest.raises(ValueError, match="no control"):
        calibrate_threshold(bad)


def test_calibrate_percentile_range():
    with pytest.raises(ValueError):
        calibrate_threshold([1.0], percentile=101)


def _table():
    return pd.DataFrame({
        "neuron_id": [1, 2, 3, 4, 5],
        "ring_igg": [0.9, 1.5, np.nan, 3.0, 2.0],
        "touches_border": [False, False, False, False, True],
    })


def test_call_igg():
    t = _table()
    c = call_igg(t, 1.2)
    assert "igg_positive" not in t  # input untouched
    assert c["igg_positive"].dtype == bool
    assert list(c["igg_positive"]) == [False, True, False, True, True]
    with pytest.raises(ValueError):
        call_igg(t, np.nan)
    with pytest.raises(KeyError):
        call_igg(t.drop(columns="ring_igg"), 1.0)


def test_summarize_section_excludes_border():
    s = summarize_section(call_igg(_table(), 1.2))
    assert s["n_neurons"] == 4
    assert s["n_igg_positive"] == 2
    assert s["pct_igg_positive"] == pytest.approx(50.0)
    assert s["median_ring_igg"] == pytest.approx(1.5)
    s2 = summarize_section(call_igg(_table(), 1.2), exclude_border=False)
    assert s2["n_neurons"] == 5 and s2["n_igg_positive"] == 3


def test_summarize_empty_and_uncalled():
    empty = pd.DataFrame({"neuron_id": [], "ring_igg": [], "touches_border": []})
    s = summarize_section(call_igg(empty, 1.0))
    assert s["n_neurons"] == 0 and s["n_igg_positive"] == 0
    assert np.isnan(s["pct_igg_positive"]) and np.isnan(s["median_ring_igg"])
    s = summarize_section(_table())
    assert np.isnan(s["n_igg_positive"]) and s["n_neurons"] == 4
