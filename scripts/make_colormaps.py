"""Regenerate chalicelib/pixels/colormaps.npz: 256-entry RGBA lookup tables, one per colormap name.

The tables are rio-tiler's own (``rio_tiler/cmap_data/*.npy``: matplotlib's, cmocean's and
rio-tiler's cfastie, rplumbo, schwarzwald), copied at development time so that a
``colormap_name`` colours exactly as titiler does; the tiler just loads the archive. A
reversed table rio-tiler ships (``viridis_r``) is stored as it is (its rounding may differ
by one from the base table turned around); one it does not (``cfastie_r``) is derived at
runtime.

    .venv/bin/python scripts/make_colormaps.py
"""

from pathlib import Path

import numpy as np
import rio_tiler

source = Path(rio_tiler.__file__).parent / "cmap_data"
tables = {}
for path in sorted(source.glob("*.npy")):
    table = np.load(path)
    if table.shape != (256, 4) or table.dtype != np.uint8:
        raise SystemExit(f"{path.name}: not a (256, 4) uint8 table")
    name = path.stem
    if name.endswith("_r") and (source / f"{name[:-2]}.npy").exists() and np.array_equal(
            table, np.load(source / f"{name[:-2]}.npy")[::-1]):
        continue  # the base table reversed: derived at runtime
    tables[name] = table
target = Path(__file__).resolve().parent.parent / "chalicelib" / "pixels" / "colormaps.npz"
np.savez_compressed(target, **tables)
print(f"wrote {len(tables)} tables from rio-tiler {rio_tiler.__version__} to {target.name} "
      f"({target.stat().st_size // 1024} KB)")
