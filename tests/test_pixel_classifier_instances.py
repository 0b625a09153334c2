"""Pixel classifier on real-like phantoms (axon puncta, thin sheaths) and its instance split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from histo_fms.segment import segment_neurons
from histo_fms.segment._model_io import _digest
from histo_fms.segment._pixel_classifier import (
    FeatureSettings,
    annotations_from_labels,
    load_pixel_classifier,
    pixel_features,
    predict_probabilities,
    separate_instances,
    train_pixel_classifier,
)
from histo_fms.synthetic.drg import REAL_TISSUE, WIDEFIELD, make_drg_section
from histo_fms.validation import score_image

PX = 0.9
NAMES = {"neuron": "NeuN", "sgc": "GS"}


def _real_like(seed):
    ph = make_drg_section((320, 320), PX, seed=seed, **REAL_TISSUE, **WIDEFIELD)
    return ph, {r: ph.channel(n) for r, n in NAMES.items()}


@pytest.fixture(scope="module")
def real_like_model():
    ph, ch = _real_like(21)
    ann = annotations_from_labels(ph.labels, pixel_size_um=PX, fraction=0.3, seed=0)
    return train_pixel_classifier([ch], [ann], pixel_size_um=PX, n_estimators=32)


def test_learns_axon_punctate_phantom_from_scribbles(real_like_model):
    # neurofilament-like neuron channel (axon puncta and fibre bundles between the
    # somata, a nerve root, debris on the slide), thin sheaths, haze, at 0.9 µm/px;
    # trained on 30 % of the neurons of another section
    counts = {"levels": np.zeros(3), "distance": np.zeros(3)}
    for seed in (22, 23):
        ph, ch = _real_like(seed)
        for split in counts:
            labels = segment_neurons(ch["neuron"], pixel_size_um=PX,
                                     backend="pixel_classifier", channels={"sgc": ch["sgc"]},
                                     model=real_like_model, split=split)
            row = score_image(labels, ph.labels, pixel_size_um=PX).row
            counts[split] += [row["n_matched"], row["n_reference"], row["n_predicted"]]
    m, nr, npred = counts["levels"]
    assert 2 * m / (nr + npred) >= 0.8  # measured 0.83 (0.87, 0.78)
    assert m / npred >= 0.85  # axon bundles and fragments are not neurons (0.88)
    # the distance-transform split keeps fibre fragments and merges: lower precision
    md, _, npd = counts["distance"]
    assert m / npred > md / npd + 0.1  # (0.69)
    assert 2 * m / (nr + npred) > 2 * md / (nr + npd)


def _disc(shape, cy, cx, r):
    yy, xx = np.indices(shape)
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_touching_somata_without_a_valley_are_split_and_fibres_dropped():
    shape = (200, 260)
    a, b = _disc(shape, 100, 80, 24), _disc(shape, 100, 124, 22)  # touching, merged
    c = _disc(shape, 40, 200, 18) & ~_disc(shape, 44, 204, 8)  # dark nucleus: a ring
    bar = np.zeros(shape, bool)
    bar[170:176, 20:240] = True  # a fibre bundle, 6 px x 220 px
    prob = np.where(a | b | c | bar, 0.95, 0.05).astype(np.float32)
    labels = separate_instances(prob, pixel_size_um=1.0, background_prob=1 - prob,
                                min_diameter_um=15, max_diameter_um=60)
    assert labels.max() == 3
    for truth in (a & ~b, b & ~a, _disc(shape, 40, 200, 18)):
        best = max(_iou(labels == i, truth) for i in range(1, 4))
        assert best > 0.8  # each soma (its nucleus filled) found once
    assert not labels[bar].any()


def test_sheath_class_parts_neighbours_along_the_valley():
    shape = (160, 200)
    a, b = _disc(shape, 80, 70, 30), _disc(shape, 80, 128, 30)  # overlap by 2 px
    sheath = np.zeros(shape, np.float32)
    sheath[:, 98:101] = 0.7
    pn = np.where(a | b, 0.95, 0.05).astype(np.float32)
    pn = np.where(sheath > 0, np.minimum(pn, 0.25), pn)
    ps = np.where(a | b, sheath, 0).astype(np.float32)
    pb = 1 - pn - ps
    labels = separate_instances(pn, pixel_size_um=0.8, sheath_prob=ps, background_prob=pb)
    assert labels.max() == 2
    left = labels[80, 70]
    assert left > 0 and labels[80, 128] not in (0, left)
    assert _iou(labels == left, a & (np.indices(shape)[1] < 99)) > 0.85


def test_distance_split_still_available():
    shape = (120, 200)
    a, b = _disc(shape, 60, 60, 25), _disc(shape, 60, 108, 25)
    prob = np.where(a | b, 0.9, 0.1).astype(np.float32)
    labels = separate_instances(prob, pixel_size_um=1.0, split="distance")
    assert labels.max() == 2
    with pytest.raises(ValueError, match="split"):
        separate_instances(prob, pixel_size_um=1.0, split="nope")


def test_local_std_features_and_older_model_files(real_like_model, tmp_path):
    s = FeatureSettings(local_std=True, num_sigma=3)
    ch = {"neuron": np.random.default_rng(0).poisson(50, (64, 64)).astype(np.uint16)}
    f = pixel_features(ch, pixel_size_um=PX, roles=["neuron"], settings=s,
                       levels={"neuron": (0.0, 100.0)})
    assert f.shape == (64, 64, s.per_role) and s.per_role == 3 * 5
    assert np.all(f[..., -3:] >= 0) and f[..., -3].mean() > 0.05  # Poisson noise varies

    # a model file written before local_std existed (no such key) loads with it off
    good = real_like_model.save(tmp_path / "new.npz")
    with np.load(good, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("metadata").tobytes())
    assert meta["features"].pop("local_std") is False
    meta["sha256"] = _digest(arrays, meta)
    old = tmp_path / "old.npz"
    np.savez(old, metadata=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    m = load_pixel_classifier(old)
    assert m.features == real_like_model.features
    _, ch = _real_like(22)
    np.testing.assert_array_equal(predict_probabilities(m, ch, pixel_size_um=PX),
                                  predict_probabilities(real_like_model, ch, pixel_size_um=PX))


def test_touching_somata_of_saturated_probability_with_a_waist_are_parted(monkeypatch):
    # two somata that touch along a wide front: probability saturated across it (no
    # valley), the pair round and solid enough to pass as one large soma
    import histo_fms.segment._pixel_classifier as pc

    shape = (160, 240)
    a, b = _disc(shape, 80, 80, 24), _disc(shape, 80, 110, 20)
    prob = np.where(a | b, 0.95, 0.05).astype(np.float32)

    def run():
        return separate_instances(prob, pixel_size_um=1.0, background_prob=1 - prob,
                                  min_diameter_um=15, max_diameter_um=60)

    labels = run()
    assert labels.max() == 2
    for truth in (a & ~b, b & ~a):
        assert max(_iou(labels == i, truth) for i in (1, 2)) > 0.8
    # a single soma with a dark nucleus at its edge (a notch) is not cut in two
    c = _disc(shape, 80, 120, 26) & ~_disc(shape, 80, 140, 9)
    one = separate_instances(np.where(c, 0.95, 0.05).astype(np.float32), pixel_size_um=1.0,
                             min_diameter_um=15, max_diameter_um=60)
    assert one.max() == 1
    monkeypatch.setattr(pc, "_NECK_CHECK", False)
    assert run().max() < 2  # without the waist check the pair stays one (or is dropped)




def test_what_the_found_somata_leave_is_kept_when_soma_like():
    # the leftover of a merged component (a dimmer soma beside brighter ones parted at
    # higher levels) is kept when it is a soma by itself, and cut at its necks when
    # it holds two; fragments are dropped
    from histo_fms.segment._pixel_classifier import _neck_split, _rest_parts

    shape = (120, 240)
    one = _disc(shape, 60, 50, 18)
    two = _disc(shape, 60, 140, 18) | _disc(shape, 60, 172, 18)
    frag = np.zeros(shape, bool)
    frag[10:14, 100:200] = True  # a thin strip
    rest = one | two | frag
    sl = (slice(0, shape[0]), slice(0, shape[1]))
    args = (1.0, 15.0, 60.0, True, 0.85, 2.2, shape)
    assert _neck_split(one, sl, *args) == []  # one soma: no neck to cut
    parts = _rest_parts(rest, sl, *args)
    got = np.zeros(shape, np.int32)
    for n, (psl, m) in enumerate(parts, start=1):
        got[psl][m] = n
    assert len(parts) == 3
    for truth in (one, _disc(shape, 60, 140, 18), _disc(shape, 60, 172, 18)):
        assert max(_iou(got == i, truth) for i in range(1, 4)) > 0.75
    assert not got[frag].any()


def test_a_soma_cut_by_its_nucleus_stays_one_and_sheath_parted_somata_two(monkeypatch):
    # a round soma whose nuclear groove (neuron probability lower, no sheath) parts it
    # into two halves at the higher levels is one soma; the same valley with the SGC
    # sheath class in it is two touching somata
    import histo_fms.segment._pixel_classifier as pc

    shape = (120, 120)
    soma = _disc(shape, 60, 60, 20)
    groove = soma & (np.abs(np.indices(shape)[1] - 60) <= 2)
    pn = np.where(soma, 0.95, 0.02).astype(np.float32)
    pn[groove] = 0.6
    rest = (1 - pn).astype(np.float32)

    def run(sheath_in_groove):
        ps = np.where(groove, 0.35 if sheath_in_groove else 0.05, 0.01 * rest)
        pb = rest - ps
        return separate_instances(pn, pixel_size_um=1.0, sheath_prob=ps.astype(np.float32),
                                  background_prob=pb.astype(np.float32),
                                  min_diameter_um=15, max_diameter_um=60)

    one = run(False)
    assert one.max() == 1 and _iou(one > 0, soma) > 0.9
    two = run(True)
    assert two.max() == 2
    for half in (soma & (np.indices(shape)[1] < 58), soma & (np.indices(shape)[1] > 62)):
        assert max(_iou(two == i, half) for i in (1, 2)) > 0.8
    monkeypatch.setattr(pc, "_SHEATH_PARTS", False)
    assert run(False).max() == 2  # without the sheath check the nucleus cuts it in two


def test_neighbours_without_a_sheath_between_are_joined_when_one_soma():
    # two pieces of one soma (cut at its nucleus by a neck split) meet where no sheath
    # lies: joined; the same pieces parted by the sheath class stay apart, and two
    # touching somata (their union not soma-like) stay apart without a sheath
    from histo_fms.segment._pixel_classifier import _merge_unsheathed

    shape = (100, 160)
    xx = np.indices(shape)[1]
    soma = _disc(shape, 50, 50, 22)
    pieces = np.where(soma, np.where(xx < 50, 1, 2), 0).astype(np.int32)
    args = (1.0, 15.0, 60.0, True, 0.85, 2.2)
    none = np.zeros(shape, bool)
    joined = _merge_unsheathed(pieces, none, *args)
    assert len(np.unique(joined[soma])) == 1 and joined.max() >= 1
    sheath = np.abs(xx - 49.5) <= 1.5
    np.testing.assert_array_equal(_merge_unsheathed(pieces, sheath, *args), pieces)
    pair = np.zeros(shape, np.int32)
    pair[_disc(shape, 50, 40, 18)] = 1
    pair[_disc(shape, 50, 76, 18) & (pair == 0)] = 2
    np.testing.assert_array_equal(_merge_unsheathed(pair, none, *args), pair)
