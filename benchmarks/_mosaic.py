"""Large mosaic phantoms for benchmarks, written tile by tile in bounded memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from histo_fms.synthetic.drg import make_drg_section

BLOCK = 1024


def write_drg_mosaic(path: Path, size: int = 16384, *, unique_blocks: int = 16,
                     pixel_size_um: float = 0.5, tile: int = 512, seed: int = 0) -> Path:
    """Write a (4, size, size) tiled OME-TIFF mosaic of DRG phantom blocks.

    ``unique_blocks`` distinct 1024 x 1024 phantoms are generated and laid out with
    flips, so generation stays fast; memory holds one row of blocks at a time.
    """
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blocks = [make_drg_section((BLOCK, BLOCK), pixel_size_um, seed=seed + 1000 + i,
                               positive_fraction=0.4).image for i in range(unique_blocks)]
    names = ["NeuN", "GS", "IgG", "DAPI"]
    nb = size // BLOCK
    layout = rng.integers(0, unique_blocks, size=(nb, nb))
    flips = rng.integers(0, 4, size=(nb, nb))

    def block(by: int, bx: int) -> np.ndarray:
        b = blocks[layout[by, bx]]
        f = flips[by, bx]
        if f & 1:
            b = b[:, ::-1]
        if f & 2:
            b = b[:, :, ::-1]
        return b

    def tiles():
        per = BLOCK // tile
        for c in range(4):
            for by in range(nb):
                row = [block(by, bx)[c] for bx in range(nb)]
                for ty in range(per):
                    for bx in range(nb):
                        for tx in range(per):
                            yield np.ascontiguousarray(
                                row[bx][ty * tile:(ty + 1) * tile, tx * tile:(tx + 1) * tile])

    tmp = path.with_suffix(".partial")
    tifffile.imwrite(tmp, tiles(), shape=(4, size, size), dtype=np.uint16, tile=(tile, tile),
                     ome=True, photometric="minisblack", compression="zlib", bigtiff=True,
                     metadata={"axes": "CYX", "PhysicalSizeX": pixel_size_um,
                               "PhysicalSizeY": pixel_size_um, "Channel": {"Name": names}})
    tmp.rename(path)
    return path
