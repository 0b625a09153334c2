"""Pixel classifier trained from neuron outlines (label images, binary masks)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from histo_fms.cli import main
from histo_fms.io import write_ome_tiff
from histo_fms.segment import segment_neurons
from histo_fms.segment._pixel_annotations import annotations_from_outlines
from histo_fms.segment._pixel_classifier import load_pixel_classifier
from histo_fms.synthetic.drg import make_drg_section
from histo_fms.validation import score_image

PX = 0.5


def test_outline_classes_inside_band_and_between_touching_neurons():
    lab = np.zeros((40, 60), np.int32)
    lab[10:30, 5:25] = 1
    lab[10:30, 25:45] = 2  # touches 1 along x = 24 | 25
    ann = annotations_from_outlines(lab, pixel_size_um=0.5, edge_um=0.5, sheath_um=2.0)
    # deep inside each neuron: neuron
    assert np.all(ann[15:25, 8:21] == 2) and np.all(ann[15:25, 29:42] == 2)
    # the shared edge of the two neurons: sheath (it parts them), not neuron
    assert np.all(ann[12:28, 24:26] == 3)
    # the band just outside: sheath; its outline itself unlabelled; far: background
    assert np.all(ann[7, 8:42] == 3) and np.all(ann[10, 8:21] == 0)
    assert ann[0, 0] == 1 and ann[39, 59] == 1
    # without the sheath class the band is background; incomplete: only near neurons
    no_sheath = annotations_from_outlines(lab, pixel_size_um=0.5, sheath=False)
    assert 3 not in no_sheath and no_sheath[7, 10] == 1 and no_sheath[12, 24] == 1
    partial = annotations_from_outlines(lab, pixel_size_um=0.5, complete=False)
    assert partial[0, 0] == 0 and partial[7, 10] == 3
    # a binary mask is one neuron per connected component
    m = annotations_from_outlines(lab > 0, pixel_size_um=0.5)
    assert np.all(m[12:28, 24:26] == 2)
    with pytest.raises(ValueError, match="no neuron"):
        annotations_from_outlines(np.zeros((5, 5), int), pixel_size_um=0.5)


def _write(ph, path):
    return write_ome_tiff(ph.image, path, channel_names=list(ph.channel_names),
                          pixel_size_um=ph.pixel_size_um)


def test_cli_train_pixels_from_outlines_learns_the_phantom(tmp_path, capsys):
    train, test = (make_drg_section((256, 256), PX, seed=s) for s in (31, 32))
    img = _write(train, tmp_path / "sec.ome.tif")
    outl = tmp_path / "sec_labels.tif"
    tifffile.imwrite(outl, train.labels.astype(np.uint16))
    out = tmp_path / "model.npz"
    rc = main(["train-pixels", str(img), "--annotations", str(outl), "--outlines",
               "--out", str(out), "--trees", "16"])
    text = capsys.readouterr().out
    assert rc == 0 and "sgc_sheath" in text
    m = load_pixel_classifier(out)
    assert m.classes == [1, 2, 3] and m.info["annotations"] == "outlines"
    ch = {"neuron": test.channel("NeuN"), "sgc": test.channel("GS"),
          "nuclei": test.channel("DAPI")}
    labels = segment_neurons(ch.pop("neuron"), pixel_size_um=PX, backend="pixel_classifier",
                             channels=ch, model=m)
    assert score_image(labels, test.labels, pixel_size_um=PX).row["f1"] > 0.85

    # bad outline files: one line naming the file, exit 2
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.ones((100, 80), np.uint8))
    empty = tmp_path / "empty.tif"
    tifffile.imwrite(empty, np.zeros((256, 256), np.uint8))
    strokes = np.zeros((256, 256), np.uint8)  # a class annotation given as outlines
    strokes[10:14, 10:60] = 1
    strokes[200:204, 30:90] = 1
    strokes[100:104, 100:130] = 2
    classes = tmp_path / "strokes.tif"
    tifffile.imwrite(classes, strokes)
    cases = [(small, "small.tif: outlines are 100 x 80 px but the image of sec.ome.tif is "
                     "256 x 256"),
             (empty, "empty.tif: not a neuron outline image: no neuron"),
             (classes, "strokes.tif: looks like a class annotation")]
    # a label image given without --outlines: the error says how to use it
    rc = main(["train-pixels", str(img), "--annotations", str(outl),
               "--out", str(tmp_path / "x.npz"), "--trees", "4"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "sec_labels.tif" in err and "--outlines" in err and "\n" not in err
    for f, msg in cases:
        rc = main(["train-pixels", str(img), "--annotations", str(f), "--outlines",
                   "--out", str(tmp_path / "x.npz"), "--trees", "4"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and msg in err and "\n" not in err


def test_three_neuron_label_image_is_not_taken_for_classes(tmp_path):
    from histo_fms.pixel_training import read_outlines

    lab = np.zeros((128, 128), np.uint8)
    yy, xx = np.mgrid[:128, :128]
    for v, (cy, cx) in enumerate([(30, 30), (30, 90), (95, 60)], start=1):
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 < 15 ** 2] = v
    f = tmp_path / "three.tif"
    tifffile.imwrite(f, lab)
    cls = read_outlines(f, lab.shape, pixel_size_um=PX)
    inside = cls[lab > 0]  # neuron, except the outline pixels themselves (unlabelled)
    assert set(np.unique(inside).tolist()) <= {0, 2} and (inside == 2).mean() > 0.7
    assert (cls == 1).any()


def test_outline_classes_array_step_refuses_class_strokes():
    """The array step shared by ``--outlines`` and the napari widget's outline mode."""
    from histo_fms.pixel_training import ClassAnnotationError, outline_classes

    ph = make_drg_section((128, 128), PX, seed=3)
    got = outline_classes(ph.labels, pixel_size_um=PX, sheath=False)
    np.testing.assert_array_equal(
        got, annotations_from_outlines(ph.labels, pixel_size_um=PX, sheath=False))
    mask = (ph.labels > 0).astype(np.uint8) * 255  # a binary mask: one neuron per component
    assert (outline_classes(mask, pixel_size_um=PX) == 2).sum() > 0
    strokes = np.zeros((64, 64), np.uint8)
    strokes[5, 5:20] = 1
    strokes[40, 5:20] = 1
    strokes[20:25, 30:40] = 2
    with pytest.raises(ClassAnnotationError, match="class annotation"):
        outline_classes(strokes, pixel_size_um=PX)
