"""Per-unit aggregation and group tests checked against independent computations."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from histo_fms import stats as hs


def _drg_tables():
    summary = pd.DataFrame({
        "image": ["a1.ome.tif", "a2.ome.tif", "b1.ome.tif", "c1.ome.tif", "ctl.ome.tif"],
        "animal": ["A", "A", "B", "C", "Z"],
        "subject": ["", "", "", "", ""],
        "group": ["FMS", "FMS", "HC", "HC", ""],
        "control": [False, False, False, False, True],
        "n_neurons": [0, 0, 0, 0, 0],
    })
    neurons = {
        "a1.ome.tif": pd.DataFrame({"ring_igg": [2.0, 1.0, 3.0],
                                    "igg_positive": [True, False, True],
                                    "touches_border": [False, False, True]}),
        "a2.ome.tif": pd.DataFrame({"ring_igg": [4.0, 1.0], "igg_positive": [True, False],
                                    "touches_border": [False, False]}),
        "b1.ome.tif": pd.DataFrame({"ring_igg": [1.0, 1.2], "igg_positive": [False, False],
                                    "touches_border": [False, False]}),
        "c1.ome.tif": pd.DataFrame({"ring_igg": [1.5], "igg_positive": [True],
                                    "touches_border": [False]}),
        "ctl.ome.tif": pd.DataFrame({"ring_igg": [1.0], "igg_positive": [False],
                                     "touches_border": [False]}),
    }
    return summary, neurons


def test_aggregate_drg_pools_sections_per_animal():
    summary, neurons = _drg_tables()
    agg = hs.aggregate_drg(summary, neurons).set_index("unit_id")
    assert list(agg.index) == ["A", "B", "C"]  # control excluded, blank subject ignored
    assert (agg["unit"] == "animal").all()
    # animal A: 2 sections; border neuron dropped -> 4 neurons, 2 positive
    assert agg.loc["A", "n_sections"] == 2
    assert agg.loc["A", "n_neurons"] == 4
    assert agg.loc["A", "pct_igg_positive"] == pytest.approx(50.0)
    assert agg.loc["A", "mean_ring_igg"] == pytest.approx(np.mean([2, 1, 4, 1]))
    assert agg.loc["A", "median_ring_igg"] == pytest.approx(1.5)
    assert agg.loc["C", "pct_igg_positive"] == pytest.approx(100.0)
    with_ctl = hs.aggregate_drg(summary, neurons, include_controls=True)
    assert "control IgG" in set(with_ctl["group"])


def test_sections_without_igg_values_are_no_zero_percent_in_the_animals_pct():
    summary, neurons = _drg_tables()
    # a third section of animal A imaged without IgG (calls blank, ring IgG NaN) and a
    # section of animal C with a blank IgG channel (ring IgG NaN, called False by a
    # threshold): neither may pull the animal's % IgG+ down
    summary = pd.concat([summary, pd.DataFrame({
        "image": ["a3.ome.tif", "c2.ome.tif"], "animal": ["A", "C"], "subject": ["", ""],
        "group": ["FMS", "HC"], "control": [False, False], "n_neurons": [0, 0]})],
        ignore_index=True)
    neurons["a3.ome.tif"] = pd.DataFrame({"ring_igg": [np.nan] * 3,
                                          "igg_positive": [pd.NA] * 3,
                                          "touches_border": [False] * 3})
    neurons["c2.ome.tif"] = pd.DataFrame({"ring_igg": [np.nan] * 4,
                                          "igg_positive": [False] * 4,
                                          "touches_border": [False] * 4})
    summary = pd.concat([summary, pd.DataFrame({
        "image": ["d1.ome.tif"], "animal": ["D"], "subject": [""], "group": ["HC"],
        "control": [False], "n_neurons": [0]})], ignore_index=True)
    neurons["d1.ome.tif"] = neurons["a3.ome.tif"]  # an animal with no IgG measured at all
    agg = hs.aggregate_drg(summary, neurons).set_index("unit_id")
    assert np.isnan(agg.loc["D", "pct_igg_positive"]) and np.isnan(agg.loc["D", "n_igg_positive"])
    assert agg.loc["D", "n_neurons"] == 3
    assert agg.loc["A", "n_neurons"] == 7 and agg.loc["A", "n_sections"] == 3
    assert agg.loc["A", "pct_igg_positive"] == pytest.approx(50.0)  # 2 of 4 called
    assert agg.loc["C", "pct_igg_positive"] == pytest.approx(100.0)  # 1 of 1
    # from the summary alone: a section with blank n_igg_positive is not 0 of n
    only = summary.assign(n_neurons=[4, 2, 2, 1, 1, 3, 4, 3],
                          n_igg_positive=[2, 1, 0, 1, 0, np.nan, np.nan, np.nan])
    agg2 = hs.aggregate_drg(only).set_index("unit_id")
    assert agg2.loc["A", "pct_igg_positive"] == pytest.approx(50.0)  # 3 of 6
    assert agg2.loc["C", "pct_igg_positive"] == pytest.approx(100.0)


def test_resolve_unit_falls_back():
    t = pd.DataFrame({"image": ["x"], "animal": [""], "subject": ["S1"]})
    assert hs.resolve_unit(t) == "subject"
    assert hs.resolve_unit(pd.DataFrame({"image": ["x"], "animal": [np.nan]})) == "image"
    with pytest.raises(ValueError):
        hs.resolve_unit(t, "patient")


def test_aggregate_skin_is_total_over_length():
    s = pd.DataFrame({"image": ["s1", "s2", "s3"], "animal": ["", "", ""],
                      "subject": ["P1", "P1", "P2"], "group": ["FM", "FM", "HC"],
                      "n_crossings": [10, 5, 8], "epidermis_length_mm": [1.0, 0.5, 0.8]})
    agg = hs.aggregate_skin(s).set_index("unit_id")
    assert agg.loc["P1", "unit"] == "subject"
    assert agg.loc["P1", "ienfd_per_mm"] == pytest.approx(15 / 1.5)
    assert agg.loc["P1", "n_sections"] == 2
    assert agg.loc["P2", "ienfd_per_mm"] == pytest.approx(10.0)


def test_apply_sample_sheet_overrides_by_stem():
    s = pd.DataFrame({"image": ["a.ome.tif", "b.ome.tif"], "group": ["x", "y"]})
    sheet = pd.DataFrame({"image": ["a.ome.tif", "b"], "group": ["FMS", ""],
                          "animal": ["m1", "m2"], "sex": ["f", "m"]})
    out = hs.apply_sample_sheet(s, sheet)
    assert list(out["group"]) == ["FMS", "y"]  # blank sheet value keeps the summary's
    assert list(out["animal"]) == ["m1", "m2"]
    assert list(out["sex"]) == ["f", "m"]


def test_two_group_mann_whitney_matches_scipy():
    a, b = [10.0, 12.0, 15.0, 20.0], [1.0, 3.0, 4.0]
    t = pd.DataFrame({"group": ["FMS"] * 4 + ["HC"] * 3, "v": a + b, "unit": "animal"})
    st = hs.compare_groups(t, "v")
    assert len(st) == 1
    r = st.iloc[0]
    ref = sps.mannwhitneyu(a, b, alternative="two-sided", method="exact")
    assert (r["group_a"], r["group_b"], r["n_a"], r["n_b"]) == ("FMS", "HC", 4, 3)
    assert r["statistic"] == ref.statistic == 12
    assert r["p"] == pytest.approx(ref.pvalue)
    assert r["p"] == pytest.approx(2 / 35)  # exact: 1 of C(7,3) orderings each side
    assert r["effect_size"] == pytest.approx(1.0)  # Cliff's delta, complete separation
    assert r["estimate"] == pytest.approx(np.median(np.subtract.outer(a, b)))
    assert list(st.columns) == hs.STATS_COLUMNS


def test_kruskal_and_holm_match_scipy_statsmodels():
    rng = np.random.default_rng(1)
    vals = {"A": rng.normal(0, 1, 5), "B": rng.normal(1, 1, 5), "C": rng.normal(3, 1, 6)}
    t = pd.DataFrame([{"group": g, "v": v} for g, vs in vals.items() for v in vs])
    st = hs.compare_groups(t, "v", unit="animal")
    kw = st[st["test"] == "Kruskal-Wallis"].iloc[0]
    ref = sps.kruskal(*vals.values())
    assert kw["statistic"] == pytest.approx(ref.statistic)
    assert kw["p"] == pytest.approx(ref.pvalue)
    mw = st[st["test"] == "Mann-Whitney U"]
    assert list(zip(mw["group_a"], mw["group_b"], strict=True)) == [("A", "B"), ("A", "C"),
                                                                    ("B", "C")]
    raw = [sps.mannwhitneyu(vals[a], vals[b], method="exact").pvalue
           for a, b in [("A", "B"), ("A", "C"), ("B", "C")]]
    np.testing.assert_allclose(mw["p"], raw)
    np.testing.assert_allclose(mw["p_adjusted"], multipletests(raw, method="holm")[1])


def test_holm_handles_nan():
    out = hs.holm([0.01, np.nan, 0.04])
    np.testing.assert_allclose(out, [0.02, np.nan, 0.04])


def test_mixed_model_recovers_group_effect():
    rng = np.random.default_rng(0)
    rows = []
    for g, eff in (("HC", 0.0), ("FMS", 0.5)):
        for k in range(5):
            a = rng.normal(0, 0.1)
            for _ in range(30):
                rows.append({"group": g, "unit_id": f"{g}{k}",
                             "ring_igg": float(np.exp(eff + a + rng.normal(0, 0.2)))})
    st = hs.mixed_model_ring_igg(pd.DataFrame(rows), reference="HC")
    assert len(st) == 1
    r = st.iloc[0]
    assert (r["group_a"], r["group_b"], r["n_a"], r["n_b"]) == ("FMS", "HC", 5, 5)
    assert r["estimate"] == pytest.approx(0.5, abs=0.2)
    assert r["ci_low"] < r["estimate"] < r["ci_high"]
    assert r["p"] < 0.01
    assert r["effect_size"] == pytest.approx(np.exp(r["estimate"]))


def test_ties_use_exact_permutation():
    a, b = [1.0, 2.0, 2.0, 5.0], [2.0, 0.5, 0.5]
    r = hs.mann_whitney(a, b)
    ref = sps.mannwhitneyu(a, b, method=sps.PermutationMethod(n_resamples=10**5))
    assert r["method"] == "exact permutation"
    assert r["p"] == pytest.approx(ref.pvalue)
    assert r["cliffs_delta"] == pytest.approx(2 * r["statistic"] / 12 - 1)


def test_hodges_lehmann_interval_exact_coverage():
    # 3 vs 3: the widest interval (min, max) covers 1 - 2/20 = 90 % < 95 %: no CI
    est, lo, hi = hs.hodges_lehmann([1, 2, 3], [4, 5, 6])
    assert est == -3 and np.isnan(lo) and np.isnan(hi)
    _, lo, hi = hs.hodges_lehmann([1, 2, 3], [4, 5, 6], confidence=0.9)
    assert (lo, hi) == (-5, -1)
    # U null counts match scipy's exact distribution
    from histo_fms.stats._tests import _u_null_counts
    c = _u_null_counts(4, 5)
    assert c.sum() == 126
    assert np.cumsum(c)[3] / 126 == pytest.approx(sps.mannwhitneyu(
        [0, 1, 2, 6], [3.5, 4.5, 5.5, 6.5, 7.5], method="exact", alternative="less").pvalue)


def _neurons(groups, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for g, eff, n_units in groups:
        for k in range(n_units):
            a = rng.normal(0, 0.05)
            for _ in range(40):
                rows.append({"group": g, "unit_id": f"{g}{k}",
                             "ring_igg": float(np.exp(eff + a + rng.normal(0, 0.2)))})
    return pd.DataFrame(rows)


def test_mixed_model_small_n_gives_no_p():
    # 1 vs 2 animals with a large effect: the fit "finds" a small p; it must not be reported
    st = hs.mixed_model_ring_igg(_neurons([("FMS", 0.8, 1), ("HC", 0.0, 2)]))
    r = st.iloc[0]
    assert (r["n_a"], r["n_b"]) == (1, 2)
    assert np.isnan(r["p"]) and np.isnan(r["p_adjusted"])
    assert "fewer than 3 units in a group" in r["note"]
    assert r["estimate"] == pytest.approx(0.8, abs=0.3)  # the estimate is still reported


def test_mixed_model_group_order_matches_other_rows():
    nb = _neurons([("FMS", 0.5, 3), ("HC", 0.0, 4)])
    mm = hs.mixed_model_ring_igg(nb).iloc[0]
    per_unit = nb.groupby(["unit_id", "group"], as_index=False)["ring_igg"].mean()
    per_unit["unit"] = "animal"
    mw = hs.compare_groups(per_unit, "ring_igg").iloc[0]
    assert (mm["group_a"], mm["group_b"]) == (mw["group_a"], mw["group_b"]) == ("FMS", "HC")
    assert (mm["n_a"], mm["n_b"]) == (mw["n_a"], mw["n_b"]) == (3, 4)
    assert np.sign(mm["estimate"]) == np.sign(mw["estimate"]) == 1
    assert mm["effect_size"] == pytest.approx(np.exp(mm["estimate"]))
    assert np.isfinite(mm["p"]) and mm["p"] < 0.05
