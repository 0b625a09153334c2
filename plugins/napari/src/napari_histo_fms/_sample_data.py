"""Sample data: a DRG and a skin section (from the repo's ``sample_data/`` or phantoms)."""

from __future__ import annotations

from pathlib import Path

from ._layers import LayerData, image_layer_data

UNITS = ("um", "um")


def _repo_sample(kind: str, name: str) -> Path | None:
    import histo_fms

    for base in (Path(histo_fms.__file__).resolve().parents[1] / "sample_data",
                 Path.cwd() / "sample_data"):
        p = base / kind / name
        if p.exists():
            return p
    return None


def _phantom_layers(image, channel_names, px: float) -> list[LayerData]:
    from ._layers import _cmap

    return [(image[i], {"name": str(n), "scale": (px, px), "units": UNITS,
                        "axis_labels": ("y", "x"), "colormap": _cmap(str(n), i),
                        "blending": "additive"}, "image")
            for i, n in enumerate(channel_names)]


def make_drg_sample() -> list[LayerData]:
    """Return a DRG section (NeuN, GS, IgG, DAPI) as image layers in µm.

    Returns
    -------
    list of LayerDataTuple
        One image layer per channel.
    """
    from histo_fms.sample_data import DRG_PIXEL_UM, DRG_SAMPLES, DRG_SHAPE

    stem, seed, control, frac = DRG_SAMPLES[0][:4]
    p = _repo_sample("drg", f"{stem}.ome.tif")
    if p is not None:
        return image_layer_data(p)
    from histo_fms.synthetic.drg import make_drg_section

    ph = make_drg_section(DRG_SHAPE, DRG_PIXEL_UM, seed=seed, control=control,
                          positive_fraction=frac)
    return _phantom_layers(ph.image, ph.channel_names, ph.pixel_size_um)


def make_skin_sample() -> list[LayerData]:
    """Return a skin section (PGP9.5 and companions) as image layers in µm.

    Returns
    -------
    list of LayerDataTuple
        One image layer per channel.

    Raises
    ------
    ImportError
        Neither ``sample_data/skin`` nor the skin phantom generator is available.
    """
    from histo_fms.sample_data import SKIN_PIXEL_UM, SKIN_SAMPLES, SKIN_SHAPE

    stem, seed, density = SKIN_SAMPLES[0][:3]
    p = _repo_sample("skin", f"{stem}.ome.tif")
    if p is not None:
        return image_layer_data(p)
    try:
        from histo_fms.synthetic.skin import make_skin_section
    except ImportError as exc:
        raise ImportError("the skin sample needs histo_fms.synthetic.skin (or the repo's "
                          "sample_data/skin); this histo-fms has neither") from exc
    ph = make_skin_section(SKIN_SHAPE, SKIN_PIXEL_UM, density_per_mm=density, seed=seed)
    return _phantom_layers(ph.image, ph.channel_names, ph.pixel_size_um)
