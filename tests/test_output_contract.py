"""The output contract: declared once (histo_fms.schema), documented, written as declared."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_review_session import make_drg_results

from histo_fms.review import ReviewSession

ROOT = Path(__file__).resolve().parents[1]


def _section(text, title):
    start = text.index(title)
    nxt = text.find("\n## ", start + len(title))
    return text[start: nxt if nxt > 0 else None]


def test_measurement_columns_declared():
    from histo_fms import schema
    from histo_fms.drg import TABLE_COLUMNS

    assert set(TABLE_COLUMNS) <= set(schema.NEURONS.names)
    assert set(schema.NEURON_COLUMNS) <= set(schema.NEURONS.names)


def test_readme_documents_every_declared_column():
    from histo_fms import schema

    contract = _section((ROOT / "README.md").read_text(encoding="utf-8"),
                        "## What you get (output contract)")
    documented = set(re.findall(r"`([a-z_0-9]+)`", contract))
    for table in schema.TABLES.values():
        missing = [c for c in table.names if c not in documented]
        assert not missing, f"{table.path}: columns not in the README's contract: {missing}"
    assert "penetration_um" in documented


@pytest.fixture(scope="module")
def drg_run(tmp_path_factory):
    out = make_drg_results(tmp_path_factory.mktemp("contract"), seeds=(4,), threshold=1.5)
    s = ReviewSession.open(out, "drg_s4", "AB")
    s.set_excluded(int(s.table["neuron_id"].iloc[0]))
    s.recompute()
    return out


def _declared(path, table):
    from histo_fms import schema

    cols = list(pd.read_csv(path, nrows=0).columns)
    undeclared = [c for c in cols if c not in schema.TABLES[table].names]
    assert not undeclared, f"{path.name}: undeclared columns {undeclared}"
    return cols


def test_drg_outputs_are_declared_and_read_back_typed(drg_run):
    from histo_fms import schema

    out = drg_run
    cols = _declared(out / "drg_s4" / "neurons.csv", "neurons")
    assert cols[: len(schema.NEURON_COLUMNS)] == schema.NEURON_COLUMNS
    _declared(out / "drg_s4" / "reviewed" / "neurons.csv", "neurons")
    _declared(out / "drg_summary.csv", "drg_summary")
    _declared(out / "drg_summary_reviewed.csv", "drg_summary_reviewed")
    t = schema.read_table(out / "drg_s4" / "reviewed" / "neurons.csv", "neurons")
    assert t["touches_border"].dtype == bool and t["excluded"].dtype == bool
    assert str(t["igg_positive"].dtype) == "boolean"
    assert t["neuron_id"].dtype == "int64" and t["ring_igg"].dtype == float
    s = schema.read_table(out / "drg_summary.csv", "drg_summary")
    assert s.loc[0, "animal"] == "" and s["control"].dtype == bool


def test_skin_crossings_declared():
    from histo_fms import schema
    from histo_fms.skin import analyze_skin
    from histo_fms.synthetic.skin import make_skin_section

    ph = make_skin_section((300, 800), 0.5, density_per_mm=15, seed=2)
    res = analyze_skin(ph.channel("PGP9.5"), pixel_size_um=0.5, membrane=ph.channel("ColIV"),
                       nuclei=ph.channel("DAPI"))
    assert len(res.crossings)
    undeclared = [c for c in res.crossings.columns if c not in schema.CROSSINGS.names]
    assert not undeclared


def test_sample_data_readme_documents_truth_fields():
    sd = ROOT / "sample_data"
    doc = (sd / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_0-9]+)`", doc))
    fields = set()
    for f in sorted((sd / "drg" / "truth").glob("*_neurons.csv")):
        fields |= set(pd.read_csv(f, nrows=0).columns)
    for f in sorted((sd / "skin" / "truth").glob("*_crossings.csv")):
        fields |= set(pd.read_csv(f, nrows=0).columns)
    for f in sorted((sd / "skin" / "truth").glob("*_truth.json")):
        truth = json.loads(f.read_text())
        fields |= set(truth)
        assert truth["ienfd_per_mm"] == pytest.approx(
            truth["n_crossings"] / (truth["surface_length_um"] / 1000))
    assert fields and not fields - documented, sorted(fields - documented)
    assert "Poisson mean" in doc


def test_one_boolean_parser():
    from histo_fms import schema

    s = pd.Series(["True", "false", "1", "0", "yes", "", None, np.nan, "FALSE", True, 1.0])
    assert schema.parse_bool(s).tolist() == [True, False, True, False, True, False, False,
                                             False, False, True, True]
    nb = schema.parse_bool(s, nullable=True)
    assert nb.isna().tolist() == [False, False, False, False, False, True, True, True, False,
                                  False, False]
    with pytest.raises(ValueError, match="maybe"):
        schema.parse_bool(pd.Series(["true", "maybe"]), strict=True)
