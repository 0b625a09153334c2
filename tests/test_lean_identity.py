"""Memory-lean internals give bit-identical DRG results (issue 17).

The glow-corrected ring excess holds the image and the blur in float32 and forms the
float64 products on the fly; the reference below is the former implementation, which
held float64 copies of both. The whole measurement must not change by a single bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from histo_fms._numerics._quantiles import label_quantiles
from histo_fms.drg import DrgParams, _measure, measure_drg
from histo_fms.drg._measure import GLOW_CLIP, GLOW_REFIT, _ring_statistic
from histo_fms.synthetic.drg import make_drg_section


def _reference_glow(img, labels, ring_meas, ring_geom, bands, valid_bg, excl, nmax, *,
                           px: float, p: DrgParams, fallback: np.ndarray) -> np.ndarray:
    inside = labels > 0
    depth = ndi.distance_transform_edt(inside) if inside.any() else np.zeros(labels.shape)
    soma = np.where(inside & (depth <= p.glow_depth_um / px) & ~excl, labels, 0)
    del depth
    ring_other = np.where((ring_geom > 0) & (ring_meas == 0) & ~excl, ring_geom, 0)
    fit = soma + ring_other + np.where(valid_bg & (ring_geom == 0), bands, 0)
    f = fit.ravel()
    y = img.ravel().astype(np.float64)
    rf = ring_meas.ravel()
    nr = np.bincount(rf, minlength=nmax + 1).astype(float)

    def s(idx, w=None):
        return np.bincount(idx, weights=w, minlength=nmax + 1)

    n, sy, syy = s(f), s(f, y), s(f, y * y)
    ry = s(rf, y)
    sig = p.glow_sigma_um if isinstance(p.glow_sigma_um, tuple) else (p.glow_sigma_um,)
    fits = []
    for sigma in sig:
        # one candidate blur (point-spread function) at a time
        g = ndi.gaussian_filter(inside.astype(np.float32), sigma / px).ravel().astype(np.float64)
        fw = f
        b = c = np.zeros(nmax + 1)
        for rnd in range(1 + GLOW_REFIT):
            if rnd:
                # refit without the pixels far above the fit (bound IgG on unmeasured
                # ring pixels, specks): they are no glow
                sel = np.flatnonzero(f)
                r = y[sel] - b[f[sel]] - c[f[sel]] * g[sel]
                scale = 1.4826 * label_quantiles(np.abs(r).astype(np.float32), f[sel],
                                                 0.5, nmax)
                fw = f.copy()
                fw[sel[r > GLOW_CLIP * np.nan_to_num(scale, nan=np.inf)[f[sel]]]] = 0
                n, sy, syy = s(fw), s(fw, y), s(fw, y * y)
            sg, sgg, sgy = s(fw, g), s(fw, g * g), s(fw, g * y)
            det = n * sgg - sg * sg
            ok = (det > 1e-3 * np.maximum(n, 1) ** 2) & (n >= 10) & (nr > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                c = np.where(ok, (n * sgy - sg * sy) / np.where(ok, det, 1.0), 0.0)
                b = np.where(ok, (sy - c * sg) / np.maximum(n, 1), 0.0)
                rss = syy - 2 * (b * sy + c * sgy) + b * b * n + 2 * b * c * sg + c * c * sgg
                e = (ry - c * s(rf, g)) / np.maximum(nr, 1) - b
        n, sy, syy = s(f), s(f, y), s(f, y * y)
        fits.append((ok, rss, e, b, c))
    # the blur that fits the image's neurons best (summed over the neurons every
    # candidate fits)
    both = np.logical_and.reduce([ok for ok, _, _, _, _ in fits])
    total = [float(np.sum(rss[both])) for _, rss, _, _, _ in fits]
    best = int(np.argmin(total))
    ok, _, e, b, c = fits[best]
    if p.ring_statistic != "mean":
        # a robust statistic of the glow-corrected ring pixels: IgG-bright specks,
        # vessel ends or a neighbour's glow covering part of the ring move it little
        idx = np.flatnonzero(rf)
        g = ndi.gaussian_filter(inside.astype(np.float32), sig[best] / px).ravel()[idx]
        corr = np.zeros(labels.shape, np.float32)
        corr.ravel()[idx] = (y[idx] - c[rf[idx]] * g).astype(np.float32)
        e = _ring_statistic(corr, ring_meas, nmax, p.ring_statistic) - b
    exc = np.where(ok, e, np.asarray(fallback, float))
    return exc


def _run(ph, px, params):
    c = {n: ph.channel(n) for n in ph.channel_names}
    return measure_drg(c["NeuN"], c["IgG"], sgc=c.get("GS"), nuclei=c.get("DAPI"),
                       pixel_size_um=px, params=params)


@pytest.mark.parametrize(("seed", "px", "kw"), [
    (1, 0.5, {}),
    (3, 0.5, {"glow_sigma_um": (0.25, 0.5)}),
    (4, 0.65, {"ring_statistic": "median", "glow_sigma_um": (0.5, 0.3)}),
])
def test_glow_excess_equals_float64_reference(monkeypatch, seed, px, kw):
    ph = make_drg_section((320, 320), px, seed=seed)
    params = DrgParams(**kw)
    new = _run(ph, px, params)
    assert len(new.table) > 5
    monkeypatch.setattr(_measure, "_glow_corrected_excess", _reference_glow)
    ref = _run(ph, px, params)
    np.testing.assert_array_equal(new.neurons, ref.neurons)
    np.testing.assert_array_equal(new.rings, ref.rings)
    pd.testing.assert_frame_equal(new.table, ref.table, check_exact=True)
