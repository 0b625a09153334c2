"""`histo-fms validate`: instance matching at IoU >= 0.5 on hand-built cases."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import tifffile

from histo_fms.cli import main
from histo_fms.io import write_labels_zarr
from histo_fms.validation import (
    match_instances,
    pool_scores,
    reference_instances,
    score_image,
)


def _square(a, y, x, n, v):
    a[y:y + n, x:x + n] = v


def _case():
    """3 reference squares (10 x 10); predictions: exact, shifted by 2 px, by 5 px, + 1 FP."""
    ref = np.zeros((60, 80), np.int32)
    pred = np.zeros_like(ref)
    _square(ref, 5, 5, 10, 1)
    _square(ref, 5, 30, 10, 2)
    _square(ref, 30, 5, 10, 3)
    _square(pred, 5, 5, 10, 7)      # IoU 1
    _square(pred, 7, 30, 10, 8)     # 8 rows overlap: 80 / 120 = 2/3
    _square(pred, 35, 5, 10, 9)     # 5 rows: 50 / 150 = 1/3 -> no match
    _square(pred, 40, 50, 10, 4)    # false positive
    return pred, ref


def test_known_numbers():
    pred, ref = _case()
    m = match_instances(pred, ref)
    assert sorted(zip(m["predicted"], m["reference"], strict=True)) == [(7, 1), (8, 2)]
    np.testing.assert_allclose(sorted(m["iou"]), [2 / 3, 1.0])
    s = score_image(pred, ref, pixel_size_um=0.5).row
    assert (s["n_reference"], s["n_predicted"], s["n_matched"]) == (3, 4, 2)
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(4 / 7)
    assert s["median_iou"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["diameter_bias_um"] == pytest.approx(0.0)  # same areas
    assert np.isnan(s["diameter_spearman"])  # fewer than 3 pairs


def test_diameter_bias_and_spearman():
    ref = np.zeros((100, 100), np.int32)
    pred = np.zeros_like(ref)
    for i, n in enumerate((8, 10, 14, 18)):
        _square(ref, 5 + 22 * i, 5, n, i + 1)
        _square(pred, 5 + 22 * i, 5, n + 2, i + 1)  # 2 px larger each way
    s = score_image(pred, ref, pixel_size_um=0.5).row
    assert s["n_matched"] == 4
    d = lambda a: 2 * np.sqrt(a / np.pi) * 0.5  # noqa: E731
    bias = np.mean([d((n + 2) ** 2) - d(n * n) for n in (8, 10, 14, 18)])
    assert s["diameter_bias_um"] == pytest.approx(bias)
    assert s["diameter_spearman"] == pytest.approx(1.0)


def test_binary_mask_split_into_components():
    mask = np.zeros((40, 40), np.uint8)
    mask[2:10, 2:10] = 255
    mask[20:30, 20:30] = 255
    inst = reference_instances(mask)
    assert inst.max() == 2
    assert reference_instances(mask > 0).max() == 2
    labels = np.zeros((40, 40), np.int32)
    labels[2:10, 2:10] = 5
    labels[10:14, 2:10] = 9  # a label image keeps its ids (touching objects stay apart)
    assert sorted(np.unique(reference_instances(labels))) == [0, 5, 9]


def test_pooled_scores_sum_counts():
    pred, ref = _case()
    a = score_image(pred, ref, pixel_size_um=1.0)
    b = score_image(ref, ref, pixel_size_um=1.0)
    pooled = pool_scores([a, b])
    assert (pooled["n_reference"], pooled["n_predicted"], pooled["n_matched"]) == (6, 7, 5)
    assert pooled["f1"] == pytest.approx(10 / 13)
    assert pooled["median_iou"] == pytest.approx(1.0)


def test_pooled_with_an_image_that_matched_nothing():
    # an image where nothing matched (e.g. a section the run found no neuron on) must
    # not break pooling: its reference objects count as misses
    pred, ref = _case()
    a = score_image(pred, ref, pixel_size_um=1.0)
    none = score_image(np.zeros_like(ref), ref, pixel_size_um=1.0)
    assert none.row["n_matched"] == 0 and none.row["recall"] == 0
    pooled = pool_scores([none, a])
    assert (pooled["n_reference"], pooled["n_matched"]) == (6, 2)
    assert pooled["f1"] == pytest.approx(4 / 10)
    assert pooled["diameter_bias_um"] == pytest.approx(0.0)


def test_fractional_reference_refused():
    prob = np.zeros((20, 20), np.float32)
    prob[2:8, 2:8] = 0.7  # a probability map, not labels or a mask
    with pytest.raises(ValueError, match="neither a label image nor a mask"):
        reference_instances(prob)
    prob[0, 0] = np.nan
    with pytest.raises(ValueError, match="neither a label image nor a mask"):
        reference_instances(prob)
    whole = np.where(prob > 0, 1.0, 0.0)  # float 0 / 1: a mask
    assert reference_instances(whole).max() == 1


def test_cli_validate(tmp_path, capsys):
    pred, ref = _case()
    res = tmp_path / "results"
    for stem in ("a", "b", "c"):
        write_labels_zarr({"neurons": pred, "rings": np.zeros_like(pred)},
                          res / stem / "labels.zarr", pixel_size_um=0.5)
    refdir = tmp_path / "ref"
    refdir.mkdir()
    tifffile.imwrite(refdir / "a.labels.tif", ref)
    iio.imwrite(refdir / "b_mask.png", ((ref > 0) * 255).astype(np.uint8))
    rc = main(["validate", str(res), "--reference", str(refdir)])
    cap = capsys.readouterr()
    assert rc == 0
    assert "2 image(s) scored" in cap.out
    assert "c: no reference" in cap.err
    t = pd.read_csv(res / "validation.csv")
    assert list(t["image"]) == ["a", "b", "ALL"]
    np.testing.assert_allclose(t["f1"], [4 / 7, 4 / 7, 4 / 7], rtol=1e-5)  # %.6g CSV
    assert list(t["n_matched"]) == [2, 2, 4]

    # --out folder; nothing scored -> exit 1 and the reasons listed
    empty = tmp_path / "empty"
    empty.mkdir()
    rc = main(["validate", str(res), "--reference", str(empty), "--out", str(tmp_path / "o")])
    cap = capsys.readouterr()
    assert rc == 1
    assert "0 image(s) scored" in cap.out
    assert cap.err.count("no reference") == 3
    assert (tmp_path / "o" / "validation.csv").exists()

    # a reference of the wrong shape is reported, the rest scored
    tifffile.imwrite(refdir / "c.tif", np.zeros((10, 10), np.uint8))
    rc = main(["validate", str(res), "--reference", str(refdir)])
    cap = capsys.readouterr()
    assert rc == 0 and "c: reference c.tif is 10 x 10 px" in cap.err

    # a probability map as reference is reported with its file name
    tifffile.imwrite(refdir / "c.tif", np.full(ref.shape, 0.5, np.float32))
    rc = main(["validate", str(res), "--reference", str(refdir)])
    cap = capsys.readouterr()
    assert rc == 0 and "c: c.tif: a float32 reference with values that are not whole" in cap.err

    rc = main(["validate", str(tmp_path / "nope"), "--reference", str(refdir)])
    assert rc == 2
    assert "nope: results folder not found" in capsys.readouterr().err
