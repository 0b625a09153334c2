"""Accuracy against phantom ground truth on a 12-section set (densities 2-40 /mm)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from accuracy_skin import evaluate, figures  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results():
    df = evaluate(n=12, shape=(400, 1600), seed0=200)
    return df, figures(df)


def test_set_covers_conditions(results):
    df, _ = results
    assert df.density_per_mm.min() <= 2 and df.density_per_mm.max() >= 40
    assert set(df.orientation) == {"up", "down"} and set(df.with_membrane) == {True, False}
    assert (df.seed >= 200).all()


def test_count_icc(results):
    _, f = results
    assert f["count ICC(A,1)"] >= 0.90


def test_precision_recall(results):
    _, f = results
    assert f["precision"] >= 0.85
    assert f["recall"] >= 0.85


def test_lengths(results):
    df, _ = results
    assert df.surface_length_rel_error.abs().max() < 0.03
    assert df.dej_length_rel_error.abs().max() < 0.05


def test_ienfd_error(results):
    df, f = results
    assert f["mean abs IENFD error (/mm)"] < 2.0
