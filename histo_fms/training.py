"""Human in the loop: reviewed neuron labels -> cellpose training pairs -> a fine-tuned model.

``histo-fms train RESULTS --out MODELDIR`` collects every image of a results folder whose
neurons were reviewed (``STEM/reviewed/labels.zarr``), writes cellpose training pairs
(``STEM_img.tif`` = neuron channel, ``STEM_masks.tif`` = reviewed labels), fine-tunes a
cellpose model from them and prints the weights path to name in a pipeline config::

    drg:
      segmentation_backend: cellpose
      segmentation_options: {model: /path/to/MODELDIR/models/histo_fms_neurons}
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tifffile

from .io import (
    InputError,
    atomic_path,
    image_stem,
    read_image,
    read_labels_zarr,
    resolve_channels,
)


def export_training_pairs(results: str | Path, dest: str | Path, *, role: str = "neuron",
                          include_unreviewed: bool = False) -> list[tuple[Path, Path]]:
    """Write cellpose training pairs from a results folder.

    Parameters
    ----------
    results : str or Path
        A DRG ``histo-fms run`` output folder.
    dest : str or Path
        Destination folder for ``STEM_img.tif`` / ``STEM_masks.tif``.
    role : str
        Channel role used as the network input.
    include_unreviewed : bool
        Also export automatic labels of images nobody reviewed (not recommended: the
        model would learn its own mistakes).

    Returns
    -------
    list of (Path, Path)
        The (image, masks) files written.

    Raises
    ------
    InputError
        Not a DRG results folder, or no reviewed image in it.
    """
    results, dest = Path(results), Path(dest)
    run_path = results / "run.json"
    if not run_path.is_file():
        raise InputError(results, "not a histo-fms results folder (no run.json)")
    run = json.loads(run_path.read_text(encoding="utf-8"))
    cfg = run.get("config", {})
    if cfg.get("pipeline") != "drg":
        raise InputError(results, "training pairs need DRG results (neuron labels)")
    pairs = []
    for f in run.get("files", []):
        if f.get("status") == "failed":
            continue
        stem = image_stem(f["path"])
        rev = results / stem / "reviewed" / "labels.zarr"
        lab_path = rev if rev.exists() else (
            results / stem / "labels.zarr" if include_unreviewed else None)
        if lab_path is None or not lab_path.exists():
            continue
        labels = read_labels_zarr(lab_path)["neurons"]
        img = read_image(f["path"], pixel_size_um=f.get("pixel_size_um"))
        idx = resolve_channels(img.channel_names, {role: cfg["channels"][role]},
                               required=[role], path=img.path)[role]
        chan = np.asarray(img.data[idx].compute())
        if chan.shape != labels.shape:
            raise InputError(img.path, f"labels {labels.shape} do not match image {chan.shape}")
        dest.mkdir(parents=True, exist_ok=True)
        ip, mp = dest / f"{stem}_img.tif", dest / f"{stem}_masks.tif"
        with atomic_path(ip) as tmp:
            tifffile.imwrite(tmp, chan, compression="zlib")
        with atomic_path(mp) as tmp:
            tifffile.imwrite(tmp, labels.astype(np.int32), compression="zlib")
        pairs.append((ip, mp))
    if not pairs:
        raise InputError(results, "no reviewed neuron labels to train on (review some images "
                                  "first, or pass --include-unreviewed)")
    return pairs


def train_cellpose(pairs: list[tuple[Path, Path]], out: str | Path, *, base: str = "cpsam",
                   n_epochs: int = 100, learning_rate: float = 1e-5, weight_decay: float = 0.1,
                   model_name: str = "histo_fms_neurons", gpu: bool | str = "auto") -> Path:
    """Fine-tune a cellpose model on training pairs.

    Parameters
    ----------
    pairs : list of (Path, Path)
        From :func:`export_training_pairs`.
    out : str or Path
        Folder the model is saved in (``out/models/model_name``).
    base : str
        Starting model (``"cpsam"`` or a weights path).
    n_epochs, learning_rate, weight_decay : float
        Training settings (cellpose-SAM defaults).
    model_name : str
        File name of the new weights.
    gpu : bool or "auto"
        GPU use.

    Returns
    -------
    Path
        The new weights file, to name as ``segmentation_options: {model: PATH}``.
    """
    from .segment._cellpose import _import_cellpose, load_model, normalize_image

    cp = _import_cellpose()
    from cellpose import train

    model = load_model(base, gpu=gpu)
    imgs = [normalize_image(tifffile.imread(i)) for i, _ in pairs]
    labs = [tifffile.imread(m).astype(np.int32) for _, m in pairs]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res = train.train_seg(model.net, train_data=imgs, train_labels=labs, normalize=False,
                          n_epochs=n_epochs, learning_rate=learning_rate,
                          weight_decay=weight_decay, batch_size=1, save_path=str(out),
                          model_name=model_name)
    path = Path(res[0] if isinstance(res, tuple) else res)
    del cp
    return path
