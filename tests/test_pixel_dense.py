"""Pixel classifier trained from dense neuron masks given as classes (2 neuron, 1 else)."""

from __future__ import annotations

import numpy as np
import tifffile

from histo_fms.cli import main
from histo_fms.io import write_ome_tiff
from histo_fms.segment import segment_neurons
from histo_fms.segment._pixel_annotations import (
    classes_from_dense,
    dense_mask_instances,
    is_dense_mask,
)
from histo_fms.segment._pixel_classifier import annotations_from_labels, load_pixel_classifier
from histo_fms.synthetic.drg import make_drg_section
from histo_fms.validation import score_image

PX = 0.5


def _two_touching_discs(shape=(80, 120), r=16):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    a = (yy - 40) ** 2 + (xx - 40) ** 2 <= r * r
    b = (yy - 40) ** 2 + (xx - 40 - int(1.8 * r)) ** 2 <= r * r
    return a, b


def test_dense_mask_detected_and_scribbles_not():
    ph = make_drg_section((128, 128), PX, seed=4)
    dense = np.where(ph.labels > 0, 2, 1).astype(np.uint8)
    assert is_dense_mask(dense)
    scribbles = annotations_from_labels(ph.labels, pixel_size_um=PX, sheath=False, seed=0)
    assert not is_dense_mask(scribbles)
    with_sheath = dense.copy()
    with_sheath[0, 0] = 3  # a painted sheath class: the annotation is used as drawn
    assert not is_dense_mask(with_sheath)
    assert not is_dense_mask(np.full((8, 8), 2, np.uint8))


def test_merged_touching_neurons_are_split_and_parted_by_a_sheath_band():
    a, b = _two_touching_discs()
    inst = dense_mask_instances(a | b, pixel_size_um=PX)
    assert inst.max() == 2
    # each disc is (mostly) one instance
    for m in (a, b):
        ids, cnt = np.unique(inst[m], return_counts=True)
        assert cnt.max() > 0.85 * m.sum() and ids[np.argmax(cnt)] > 0
    dense = np.where(a | b, 2, 1).astype(np.uint8)
    cls = classes_from_dense(dense, pixel_size_um=PX)
    mid = 40 + int(0.9 * 16)  # where the discs meet
    assert cls[40, mid] == 3 and cls[40, 40] == 2 and cls[40, 40 + int(1.8 * 16)] == 2
    assert cls[40, 40 - 16 - 4] == 3 and cls[2, 2] == 1  # band outside; far background
    no_sgc = classes_from_dense(dense, pixel_size_um=PX, sheath=False)
    assert 3 not in no_sgc and no_sgc[40, mid] == 1
    # a single round neuron stays one
    assert dense_mask_instances(a, pixel_size_um=PX).max() == 1


def test_cli_train_pixels_from_a_dense_mask(tmp_path, capsys):
    train, test = (make_drg_section((256, 256), PX, seed=s) for s in (41, 42))
    img = write_ome_tiff(train.image, tmp_path / "sec.ome.tif",
                         channel_names=list(train.channel_names), pixel_size_um=PX)
    ann = tmp_path / "sec_annot.tif"
    tifffile.imwrite(ann, np.where(train.labels > 0, 2, 1).astype(np.uint8))
    out = tmp_path / "model.npz"
    rc = main(["train-pixels", str(img), "--annotations", str(ann), "--out", str(out),
               "--trees", "16"])
    text = capsys.readouterr().out
    assert rc == 0 and "dense neuron mask" in text
    m = load_pixel_classifier(out)
    assert m.classes == [1, 2, 3] and m.info["dense_masks"] == 1
    ch = {"sgc": test.channel("GS"), "nuclei": test.channel("DAPI")}
    labels = segment_neurons(test.channel("NeuN"), pixel_size_um=PX,
                             backend="pixel_classifier", channels=ch, model=m)
    assert score_image(labels, test.labels, pixel_size_um=PX).row["f1"] > 0.85
