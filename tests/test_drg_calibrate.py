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
    assert c["igg_positive"].dtype == "boolean"
    # an unmeasured ring (NaN) is left uncalled: no evidence of IgG-negative
    assert c["igg_positive"].isna().tolist() == [False, False, True, False, False]
    assert c["igg_positive"].fillna(False).tolist() == [False, True, False, True, True]
    with pytest.raises(ValueError):
        call_igg(t, np.nan)
    with pytest.raises(KeyError):
        call_igg(t.drop(columns="ring_igg"), 1.0)


def test_summarize_section_excludes_border():
    s = summarize_section(call_igg(_table(), 1.2))
    assert s["n_neurons"] == 4 and s["n_called"] == 3
    assert s["n_igg_positive"] == 2
    # over the 3 called neurons (counting the NaN ring negative gave 50 %)
    assert s["pct_igg_positive"] == pytest.approx(200 / 3)
    assert s["median_ring_igg"] == pytest.approx(1.5)
    s2 = summarize_section(call_igg(_table(), 1.2), exclude_border=False)
    assert s2["n_neurons"] == 5 and s2["n_igg_positive"] == 3 and s2["n_called"] == 4
    # calls read back from a CSV (blank, "True", "False") count the same
    t = call_igg(_table(), 1.2)
    t["igg_positive"] = t["igg_positive"].map({True: "True", False: "False"}).fillna("")
    assert summarize_section(t) == s


def test_summarize_empty_and_uncalled():
    empty = pd.DataFrame({"neuron_id": [], "ring_igg": [], "touches_border": []})
    s = summarize_section(call_igg(empty, 1.0))
    assert s["n_neurons"] == 0 and s["n_igg_positive"] == 0
    assert np.isnan(s["pct_igg_positive"]) and np.isnan(s["median_ring_igg"])
    s = summarize_section(_table())
    assert np.isnan(s["n_igg_positive"]) and s["n_neurons"] == 4


# --- robust calibration ---------------------------------------------------------------

MU, SD, FPR = 0.4, 0.15, 0.01
TRUE_THR = float(np.exp(MU + 2.3263478740408408 * SD))  # exp(mu + z_0.99 * sd)


def _controls(bound: float, n: int = 1500, seed: int = 0):
    """Unbound log-normal control rings plus a share ``bound`` of bound ones."""
    rng = np.random.default_rng(seed)
    nb = int(round(bound * n))
    v = np.r_[np.exp(rng.normal(MU, SD, n - nb)), np.exp(rng.normal(1.6, 0.3, nb))]
    sec = np.arange(v.size) % 3
    return rng.permutation(v), sec


@pytest.mark.parametrize("bound", [0.0, 0.02, 0.05])
def test_robust_calibration_recovers_threshold_with_bound_controls(bound):
    from histo_fms.drg import calibrate

    v, sec = _controls(bound)
    cal = calibrate(v, sections=sec, false_positive_rate=FPR, n_bootstrap=50)
    assert cal.method == "robust" and cal.n_rings == v.size and cal.n_sections == 3
    assert cal.threshold == pytest.approx(TRUE_THR, rel=0.05)
    assert cal.bound_fraction == pytest.approx(bound, abs=0.015)
    # the unbound rings above it: about the stated rate
    assert cal.estimated_fpr == pytest.approx(FPR, abs=0.01)
    lo, hi = np.percentile(cal.bootstrap, [2.5, 97.5])
    assert lo < TRUE_THR < hi or abs(cal.threshold / TRUE_THR - 1) < 0.02
    assert not cal.warnings
    # the percentile method is pulled into the bound population by bound controls
    pct = calibrate(v, sections=sec, method="percentile", n_bootstrap=0)
    if bound >= 0.02:
        assert pct.threshold > 1.5 * TRUE_THR


def test_robust_calibration_warnings():
    from histo_fms.drg import calibrate

    v, _ = _controls(0.0, n=60)
    cal = calibrate(v, n_bootstrap=0)
    assert len(cal.warnings) == 1 and "few controls" in cal.warnings[0]
    v, sec = _controls(0.3)
    cal = calibrate(v, sections=sec, n_bootstrap=0)
    assert any("bimodal" in w for w in cal.warnings)
    d = cal.as_dict()
    assert {"method", "threshold", "estimated_fpr", "n_control_rings",
            "n_control_sections", "warnings"} <= set(d)


def test_calibrate_rejects_bad_options():
    from histo_fms.drg import calibrate

    with pytest.raises(ValueError, match="method"):
        calibrate([1.0, 2.0], method="mean")
    with pytest.raises(ValueError, match="false_positive_rate"):
        calibrate([1.0, 2.0], false_positive_rate=0.7)
    with pytest.raises(ValueError, match="no control"):
        calibrate([np.nan])


def test_wilson_and_percent_interval():
    from histo_fms.drg import percent_interval, wilson_interval

    lo, hi = wilson_interval(0, 50)
    assert lo == 0 and 0.05 < hi < 0.09
    assert np.isnan(wilson_interval(0, 0)[0])
    r = np.r_[np.full(80, 1.0), np.full(20, 5.0)]
    lo, hi = percent_interval(r, 2.0)
    assert lo < 20 < hi
    # unmeasured rings are left out of the interval's n, as out of the % itself
    assert percent_interval(np.r_[r, np.full(25, np.nan)], 2.0) == (lo, hi)
    assert np.isnan(percent_interval([np.nan, np.nan], 2.0)[0])
    wide = percent_interval(r, 2.0, bootstrap=[0.5, 2.0, 6.0])
    assert wide[0] <= lo and wide[1] >= hi


# --- per-batch calibration and intervals in the batch summary -------------------------

def _write_section(out, stem, ring_igg):
    from histo_fms.batch import FileOutcome

    d = out / stem
    d.mkdir(parents=True)
    pd.DataFrame({"neuron_id": np.arange(1, ring_igg.size + 1), "ring_igg": ring_igg,
                  "touches_border": False}).to_csv(d / "neurons.csv", index=False)
    return FileOutcome(path=out / f"{stem}.tif", stem=stem, status="ok", pixel_size_um=0.5)


def _finish(tmp_path, sections, meta, calibration=None):
    from histo_fms.batch import _finish_drg
    from histo_fms.config import load_config

    cfg = load_config(pipeline="drg", overrides={"calibration": calibration or {}})
    outcomes = [_write_section(tmp_path, s, v) for s, v in sections.items()]
    warnings = []
    res = _finish_drg(cfg, tmp_path, outcomes, meta, warnings, "batch")
    return res, pd.read_csv(tmp_path / "drg_summary.csv"), warnings


def test_per_batch_calibration_uses_its_own_controls_and_intervals_cover(tmp_path):
    rng = np.random.default_rng(3)

    def sec(scale, frac, n=300, bound=0.02):
        # batch B stains twice as bright as batch A: its unbound rings sit higher
        npos = int(frac * n) if frac else int(bound * n)
        neg = np.exp(rng.normal(MU, SD, n - npos)) * scale
        pos = np.exp(rng.normal(1.8, 0.3, npos)) * scale
        return np.r_[neg, pos], 100.0 * npos / n

    truth, sections, meta = {}, {}, {}
    for b, scale in (("A", 1.0), ("B", 2.0)):
        for k, (ctrl, frac) in enumerate([(True, 0), (True, 0), (False, 0.1), (False, 0.4)]):
            stem = f"{b}{k}"
            sections[stem], truth[stem] = sec(scale, frac)
            meta[stem] = {"batch": b, "control": ctrl, "subject": stem}
    (thr, _, _, cal), summary, warnings = _finish(tmp_path, sections, meta)
    assert thr is None  # two batches: one threshold each
    assert cal["A"]["threshold"] == pytest.approx(TRUE_THR, rel=0.08)
    assert cal["B"]["threshold"] == pytest.approx(2 * TRUE_THR, rel=0.08)
    assert cal["A"]["control_sections"] == ["A0", "A1"]
    assert cal["B"]["n_control_sections"] == 2 and cal["B"]["n_control_rings"] == 600
    s = summary.set_index("subject")
    assert {"pct_ci_low", "pct_ci_high", "calibration", "batch"} <= set(summary.columns)
    for stem, t in truth.items():
        row = s.loc[stem]
        assert row["threshold"] == pytest.approx(cal[stem[0]]["threshold"])
        assert row["pct_ci_low"] <= row["pct_igg_positive"] <= row["pct_ci_high"]
        if not meta[stem]["control"]:
            assert row["pct_ci_low"] <= t <= row["pct_ci_high"]
            assert row["pct_igg_positive"] == pytest.approx(t, abs=3)
    assert not [w for w in warnings if "bimodal" in w]


def test_batch_threshold_given_and_few_controls_warning(tmp_path):
    rng = np.random.default_rng(4)
    sections = {"A0": np.exp(rng.normal(MU, SD, 40)), "A1": np.exp(rng.normal(MU, SD, 50)),
                "B0": np.exp(rng.normal(MU, SD, 50))}
    meta = {"A0": {"batch": "A", "control": True}, "A1": {"batch": "A", "control": False},
            "B0": {"batch": "B", "control": False}}
    (_, _, _, cal), summary, warnings = _finish(tmp_path, sections, meta,
                                                {"thresholds": {"B": 3.0}})
    assert cal["B"]["method"] == "explicit" and cal["B"]["threshold"] == 3.0
    assert summary.set_index("image").loc["B0.tif", "threshold"] == 3.0
    assert any(w.startswith("batch 'A': few controls: 40 control rings in 1 section")
               for w in warnings)


def test_batch_without_controls_is_a_one_line_error(tmp_path):
    from histo_fms.io import InputError, check_calibration_batches, read_sample_sheet

    sheet = tmp_path / "samples.csv"
    sheet.write_text("image,control,batch\na.tif,true,A\nb.tif,false,A\nc.tif,false,B\n")
    df = read_sample_sheet(sheet)
    with pytest.raises(InputError) as e:
        check_calibration_batches(df, sheet, {}, None)
    msg = str(e.value)
    assert "samples.csv" in msg and "'B'" in msg and "\n" not in msg
    check_calibration_batches(df, sheet, {"B": 2.0}, None)  # a threshold for it: fine
    check_calibration_batches(df, sheet, {}, 2.0)
    # 'slide' stands in for 'batch'
    sheet.write_text("image,control,slide\na.tif,true,S1\nc.tif,false,S2\n")
    with pytest.raises(InputError, match="slide 'S2'"):
        check_calibration_batches(read_sample_sheet(sheet), sheet, {}, None)


def test_unmeasured_rings_are_left_uncalled_not_counted_negative(tmp_path):
    # 50 % of the measured rings are bound; 15 % of the section's rings could not be
    # measured (NaN). Counting those as IgG-negative read 43.5 %; they are left uncalled
    from histo_fms import schema
    from histo_fms.stats import aggregate_drg

    rng = np.random.default_rng(7)
    ctrl = np.exp(rng.normal(MU, SD, 300))
    test = np.r_[np.full(100, 1.0), np.full(100, 9.0), np.full(30, np.nan)]
    meta = {"c": {"control": True, "animal": "m0", "group": "ctl"},
            "t": {"control": False, "animal": "m1", "group": "FMS"}}
    _, summary, warnings = _finish(tmp_path, {"c": ctrl, "t": test}, meta)
    row = summary.set_index("image").loc["t.tif"]
    assert row["n_neurons"] == 230 and row["n_called"] == 200
    assert row["n_igg_positive"] == 100 and row["pct_igg_positive"] == pytest.approx(50.0)
    assert row["pct_ci_low"] < 50.0 < row["pct_ci_high"]
    t = schema.read_table(tmp_path / "t" / "neurons.csv", "neurons")
    assert t["igg_positive"].isna().sum() == 30
    assert t.loc[t["ring_igg"].isna(), "igg_positive"].isna().all()
    line = [w for w in warnings if w.startswith("t.tif:")]
    assert len(line) == 1 and "30 of its 230 neurons" in line[0] and "uncalled" in line[0]
    # per animal: the same denominator, from the neuron tables and from the summary alone
    by_tables = aggregate_drg(summary, {"t.tif": t}, unit="animal")
    by_summary = aggregate_drg(summary, unit="animal")
    for agg in (by_tables, by_summary):
        r = agg.set_index("unit_id").loc["m1"]
        assert r["pct_igg_positive"] == pytest.approx(50.0) and r["n_igg_positive"] == 100
