"""Pixel-classifier backend: learns a phantom from scribbles, safe model files, CLI errors."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest
import tifffile

from histo_fms.cli import main
from histo_fms.drg import DrgParams, measure_drg
from histo_fms.drg._context import segmentation_radius_px
from histo_fms.io import write_ome_tiff
from histo_fms.segment import segment_neurons
from histo_fms.segment._model_io import Forest, ModelError, _digest
from histo_fms.segment._pixel_classifier import (
    FeatureSettings,
    annotations_from_labels,
    load_pixel_classifier,
    predict_probabilities,
    reach_px,
    train_pixel_classifier,
)
from histo_fms.synthetic.drg import make_drg_section
from histo_fms.validation import score_image

ROLE = {"NeuN": "neuron", "GS": "sgc", "DAPI": "nuclei", "IgG": "igg"}
PX = 0.5


def _channels(ph, roles=("neuron", "sgc", "nuclei")):
    return {ROLE[n]: ph.image[i] for i, n in enumerate(ph.channel_names) if ROLE[n] in roles}


@pytest.fixture(scope="module")
def trained():
    ph = make_drg_section((384, 384), PX, seed=11)
    ann = annotations_from_labels(ph.labels, pixel_size_um=PX, fraction=0.35, seed=0)
    model = train_pixel_classifier([_channels(ph)], [ann], pixel_size_um=PX,
                                   n_estimators=24)
    return ph, ann, model


@pytest.fixture(scope="module")
def test_section():
    return make_drg_section((384, 384), PX, seed=12)


def _f1(labels, truth, px):
    return score_image(labels, truth, pixel_size_um=px).row["f1"]


def test_scribbles_are_sparse_and_from_truth(trained):
    ph, ann, _ = trained
    assert set(np.unique(ann)) == {0, 1, 2, 3}
    assert (ann > 0).mean() < 0.1  # sparse
    assert np.all(ph.labels[ann == 2] > 0)  # neuron strokes lie in neurons
    assert np.all(ph.labels[(ann == 1) | (ann == 3)] == 0)


def test_learns_phantom_from_scribbles(trained, test_section):
    _, _, model = trained
    assert model.roles == ["neuron", "sgc", "nuclei"]
    assert model.classes == [1, 2, 3]
    assert model.info["oob_accuracy"] > 0.9
    ph = test_section
    ch = _channels(ph)
    labels = segment_neurons(ch["neuron"], pixel_size_um=PX, backend="pixel_classifier",
                             channels={k: v for k, v in ch.items() if k != "neuron"},
                             model=model)
    # an unseen section: most neurons found as instances at IoU >= 0.5
    assert _f1(labels, ph.labels, PX) > 0.85
    assert labels.max() > 0.8 * ph.labels.max()


def test_trained_at_one_pixel_size_applies_at_another(trained):
    _, _, model = trained
    px = 0.9
    ph = make_drg_section((256, 256), px, seed=13)
    ch = _channels(ph)
    labels = segment_neurons(ch["neuron"], pixel_size_um=px, backend="pixel_classifier",
                             channels={k: v for k, v in ch.items() if k != "neuron"},
                             model=model)
    assert _f1(labels, ph.labels, px) > 0.8


def test_features_do_not_depend_on_pixel_size():
    # a smooth blob sampled at two pixel sizes gives the same features at the same µm
    def blob(px, n):
        y, x = (np.indices((n, n)) + 0.5) * px
        return (1000 * np.exp(-((y - 40) ** 2 + (x - 40) ** 2) / (2 * 10.0 ** 2)) + 100
                ).astype(np.float32)

    s = FeatureSettings(sigma_min_um=2.0, sigma_max_um=4.0, num_sigma=2)
    from histo_fms.segment._pixel_classifier import pixel_features

    lev = {"neuron": (100.0, 500.0)}
    fa = pixel_features({"neuron": blob(0.5, 160)}, pixel_size_um=0.5, roles=["neuron"],
                        settings=s, levels=lev)
    fb = pixel_features({"neuron": blob(1.0, 80)}, pixel_size_um=1.0, roles=["neuron"],
                        settings=s, levels=lev)
    # pixel (2i+1/2) at 0.5 µm vs pixel i at 1.0 µm: compare at the blob's flank
    a = 0.5 * (fa[60:120:2, 70] + fa[61:121:2, 70])
    b = fb[30:60, 35]
    scale = np.abs(b).max(axis=0) + 1e-6
    assert np.max(np.abs(a - b) / scale) < 0.1


def test_save_load_round_trip_identical(trained, test_section, tmp_path):
    _, _, model = trained
    path = model.save(tmp_path / "m")
    assert path.name == "m.npz"
    loaded = load_pixel_classifier(path)
    assert loaded.roles == model.roles and loaded.classes == model.classes
    assert loaded.features == model.features
    assert loaded.pixel_size_um == PX
    assert loaded.info["versions"]["scikit-learn"]
    ch = _channels(test_section)
    pa = predict_probabilities(model, ch, pixel_size_um=PX)
    pb = predict_probabilities(loaded, ch, pixel_size_um=PX)
    np.testing.assert_array_equal(pa, pb)
    la = segment_neurons(ch["neuron"], pixel_size_um=PX, backend="pixel_classifier",
                         channels=ch, model=model)
    lb = segment_neurons(ch["neuron"], pixel_size_um=PX, backend="pixel_classifier",
                         channels=ch, model=str(path))
    np.testing.assert_array_equal(la, lb)


def test_numpy_predictor_equals_sklearn(trained, test_section):
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
    rf = RandomForestClassifier(8, random_state=0).fit(x, y)
    f = Forest.from_sklearn(rf)
    np.testing.assert_allclose(f.predict_proba(x), rf.predict_proba(x), atol=1e-12)
    g = Forest(arrays=f.arrays, n_features=f.n_features)
    g._sk_trees = []  # force the numpy predictor
    np.testing.assert_allclose(g.predict_proba(x), rf.predict_proba(x), atol=1e-12)


def _rewrite(src, dst, edit):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("metadata").tobytes())
    edit(meta, arrays)
    np.savez(dst, metadata=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return dst


def test_foreign_and_tampered_files_are_refused(trained, tmp_path):
    _, _, model = trained
    good = model.save(tmp_path / "good.npz")

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    bad = tmp_path / "evil.npz"
    bad.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ModelError, match="evil.npz: not a histo-fms"):
        load_pixel_classifier(bad)
    # an npz whose entries are pickled objects is refused without unpickling
    np.savez(tmp_path / "objs.npz", metadata=np.array([Evil()], dtype=object))
    with pytest.raises(ModelError, match="objs.npz"):
        load_pixel_classifier(tmp_path / "objs.npz")
    assert not (tmp_path / "pwned").exists()

    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelError, match="junk.npz: not a histo-fms"):
        load_pixel_classifier(junk)
    zipped = tmp_path / "other.npz"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ModelError, match="other.npz"):
        load_pixel_classifier(zipped)

    def roles(meta, arrays):
        meta["roles"] = ["neuron", "nuclei", "sgc"]

    with pytest.raises(ModelError, match="roles.npz: .*checksum"):
        load_pixel_classifier(_rewrite(good, tmp_path / "roles.npz", roles))

    def thresholds(meta, arrays):
        arrays["threshold"] = arrays["threshold"] + 1.0

    with pytest.raises(ModelError, match="checksum"):
        load_pixel_classifier(_rewrite(good, tmp_path / "thr.npz", thresholds))

    def loop(meta, arrays):  # a cycle in a tree, checksum recomputed
        arrays["left"][0] = 0
        meta["sha256"] = _digest(arrays, meta)

    with pytest.raises(ModelError, match="loop.npz: not a valid model"):
        load_pixel_classifier(_rewrite(good, tmp_path / "loop.npz", loop))

    def version(meta, arrays):
        meta["format_version"] = 99
        meta["sha256"] = _digest(arrays, meta)

    with pytest.raises(ModelError, match="ver.npz: model format version 99"):
        load_pixel_classifier(_rewrite(good, tmp_path / "ver.npz", version))
    with pytest.raises(ModelError, match="missing.npz: .*not found"):
        load_pixel_classifier(tmp_path / "missing.npz")


def test_roles_checked_against_the_model(trained, tmp_path):
    ph, _, model = trained
    path = model.save(tmp_path / "m.npz")
    with pytest.raises(ModelError, match=r"m.npz: model was trained on channel roles .*"
                                         r"lacks \['sgc', 'nuclei'\]"):
        load_pixel_classifier(path, roles=["neuron"])
    with pytest.raises(ModelError, match="lacks"):
        segment_neurons(ph.image[0], pixel_size_um=PX, backend="pixel_classifier",
                        model=str(path))


def test_measure_drg_and_tile_margin(trained, test_section, tmp_path):
    _, _, model = trained
    path = model.save(tmp_path / "m.npz")
    ph = test_section
    ch = _channels(ph, roles=("neuron", "sgc", "nuclei", "igg"))
    p = DrgParams(segmentation_backend="pixel_classifier",
                  segmentation_options={"model": str(path)})
    res = measure_drg(ch["neuron"], ch["igg"], pixel_size_um=PX, sgc=ch["sgc"],
                      nuclei=ch["nuclei"], params=p)
    assert _f1(res.neurons, ph.labels, PX) > 0.85
    assert len(res.table) == res.neurons.max()
    # the tile margin covers the model's feature reach (4 x its largest scale)
    r = segmentation_radius_px(p, PX)
    assert r == reach_px(p.segmentation_options, PX, max_diameter_um=p.max_diameter_um)
    assert r >= 4 * model.features.sigma_max_um / PX
    assert segmentation_radius_px(p, 1.0) < r


def test_a_model_still_gets_a_noise_sgc_channel_and_the_section_is_flagged(
        trained, test_section, tmp_path):
    # the SGC channel is left out of everything else, but a model trained on it needs it
    _, _, model = trained
    path = model.save(tmp_path / "m.npz")
    ph = test_section
    ch = _channels(ph, roles=("neuron", "sgc", "nuclei", "igg"))
    noise = np.random.default_rng(0).poisson(np.full(ch["sgc"].shape, 300.0)).astype(np.uint16)
    p = DrgParams(segmentation_backend="pixel_classifier",
                  segmentation_options={"model": str(path)})
    res = measure_drg(ch["neuron"], ch["igg"], pixel_size_um=PX, sgc=noise,
                      nuclei=ch["nuclei"], params=p)
    assert res.qc_flag == "sgc_no_signal"
    assert res.table["sgc_coverage"].isna().all()
    assert len(res.table) == res.neurons.max()


def _write_section(ph, path):
    return write_ome_tiff(ph.image, path, channel_names=list(ph.channel_names),
                          pixel_size_um=ph.pixel_size_um)


def test_cli_train_pixels(tmp_path, capsys):
    ph = make_drg_section((256, 256), PX, seed=21)
    img = _write_section(ph, tmp_path / "sec.ome.tif")
    ann = tmp_path / "sec_annot.tif"
    tifffile.imwrite(ann, annotations_from_labels(ph.labels, pixel_size_um=PX, seed=1))
    out = tmp_path / "model.npz"
    rc = main(["train-pixels", str(img), "--annotations", str(ann), "--out", str(out),
               "--trees", "8"])
    text = capsys.readouterr().out
    assert rc == 0
    assert f"model: {out}" in text
    assert "annotated pixels: background" in text and "neuron" in text
    assert "out-of-bag accuracy: " in text
    m = load_pixel_classifier(out)
    assert m.roles == ["neuron", "sgc", "nuclei"] and m.pixel_size_um == PX

    # wrong shape, missing class, foreign --out: one line naming the file, exit 2
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.ones((100, 80), np.uint8))
    no_neuron = tmp_path / "nobg.tif"
    a = np.zeros((256, 256), np.uint8)
    a[:10] = 1
    tifffile.imwrite(no_neuron, a)
    notmodel = tmp_path / "notes.npz"
    notmodel.write_text("my notes")
    cases = [([str(img), "--annotations", str(small), "--out", str(tmp_path / "x.npz")],
              "small.tif: annotation is 100 x 80 px but the image of sec.ome.tif is 256 x 256"),
             ([str(img), "--annotations", str(no_neuron), "--out", str(tmp_path / "x.npz")],
              "nobg.tif: no pixel of class 2 (neuron)"),
             ([str(img), "--annotations", str(ann), "--out", str(notmodel)],
              "notes.npz: exists and is not a histo-fms pixel-classifier model")]
    for args, msg in cases:
        rc = main(["train-pixels", *args, "--trees", "4"])
        err = capsys.readouterr().err.strip()
        assert rc == 2
        assert msg in err and "\n" not in err
    assert notmodel.read_text() == "my notes"


def test_cli_run_refuses_a_model_that_is_not_one(tmp_path, capsys):
    ph = make_drg_section((128, 128), PX, seed=22)
    img = _write_section(ph, tmp_path / "sec.ome.tif")
    fake = tmp_path / "fake.npz"
    fake.write_bytes(b"PK not really")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("pipeline: drg\nchannels: {neuron: NeuN, igg: IgG, sgc: GS}\n"
                   f"drg: {{segmentation_backend: pixel_classifier, "
                   f"segmentation_options: {{model: {fake}}}}}\n")
    rc = main(["run", str(cfg), str(img), "--out", str(tmp_path / "out"), "--scheduler",
               "synchronous", "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("histo-fms: error: fake.npz: not a histo-fms pixel-classifier")


def test_tiled_run_equals_untiled(trained, tmp_path):
    import dask.array as da

    from histo_fms.io import read_labels_zarr
    from histo_fms.parallel import measure_drg_tiled

    _, _, model = trained
    path = model.save(tmp_path / "m.npz")
    px = 2.0  # coarse and sparse (55 neurons): the same 3 x 3 tiling of real crops, 3x cheaper
    ph = make_drg_section((224, 224), px, seed=14, packing=0.15)
    ch = _channels(ph, roles=("neuron", "sgc", "nuclei", "igg"))
    p = DrgParams(segmentation_backend="pixel_classifier",
                  segmentation_options={"model": str(path)})
    whole = measure_drg(ch["neuron"], ch["igg"], pixel_size_um=px, sgc=ch["sgc"],
                        nuclei=ch["nuclei"], params=p)
    assert whole.neurons.max() > 20
    # tiles are real crops (margin below the conservative rule, above the backend's reach)
    margin = 2 * segmentation_radius_px(p, px)
    assert margin + 76 < 224
    lazy = {k: da.from_array(v, chunks=76) for k, v in ch.items()}
    table = measure_drg_tiled(lazy, pixel_size_um=px, params=p, tile_px=76,
                              margin_px=margin, check_margin=False,
                              labels_path=tmp_path / "labels.zarr", scheduler="synchronous")
    np.testing.assert_array_equal(read_labels_zarr(tmp_path / "labels.zarr")["neurons"],
                                  whole.neurons)
    assert len(table) == len(whole.table)


def test_prediction_in_strips_equals_whole_image(trained, test_section):
    _, _, model = trained
    ch = _channels(test_section)
    whole = predict_probabilities(model, ch, pixel_size_um=PX, strip_px=10**9)
    strips = predict_probabilities(model, ch, pixel_size_um=PX, strip_px=300 * 384)
    np.testing.assert_array_equal(strips, whole)


def test_run_refuses_unknown_options_and_missing_roles(trained, tmp_path, capsys):
    _, _, model = trained
    path = model.save(tmp_path / "m.npz")
    ph = make_drg_section((128, 128), PX, seed=23)
    img = _write_section(ph, tmp_path / "sec.ome.tif")
    for opts, chans, msg in [
            (f"{{model: {path}, modle: x}}", "{neuron: NeuN, igg: IgG, sgc: GS, nuclei: DAPI}",
             "segmentation_options: unknown option(s) ['modle']"),
            (f"{{model: {path}}}", "{neuron: NeuN, igg: IgG, sgc: GS}",
             "m.npz: model was trained on channel roles ['neuron', 'sgc', 'nuclei']; this "
             "image lacks ['nuclei']")]:
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(f"pipeline: drg\nchannels: {chans}\ndrg: {{segmentation_backend: "
                       f"pixel_classifier, segmentation_options: {opts}}}\n")
        rc = main(["run", str(cfg), str(img), "--out", str(tmp_path / "out"), "--scheduler",
                   "synchronous", "-q"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and msg in err and "\n" not in err
