"""Regenerate chalicelib/pixels/colormaps.npz: 256-entry RGBA lookup tables, one per colormap name.

matplotlib is used here, at development time only; the tiler just loads the tables.
Reversed maps (``viridis_r``) are derived at runtime, not stored.

    .venv/bin/pip install matplotlib && .venv/bin/python scripts/make_colormaps.py
"""

from pathlib import Path

import matplotlib
import numpy as np

NAMES = [
    "viridis", "magma", "inferno", "plasma", "cividis", "turbo", "greys", "gray", "bone", "pink",
    "hot", "afmhot", "cool", "coolwarm", "bwr", "seismic", "jet", "rainbow", "terrain", "ocean",
    "gist_earth", "cubehelix", "twilight", "rdylgn", "rdylbu", "rdbu", "rdgy", "spectral", "brbg",
    "piyg", "prgn", "puor", "blues", "greens", "reds", "oranges", "purples", "ylgn", "ylgnbu",
    "ylorbr", "ylorrd", "orrd", "bugn", "bupu", "gnbu", "pubu", "purd", "rdpu", "summer",
    "autumn", "winter", "spring", "copper",
]

by_lower = {name.lower(): name for name in matplotlib.colormaps}
tables = {}
for name in NAMES:
    cmap = matplotlib.colormaps[by_lower[name]]
    tables[name] = np.round(cmap(np.linspace(0, 1, 256)) * 255).astype("uint8")
target = Path(__file__).resolve().parent.parent / "chalicelib" / "pixels" / "colormaps.npz"
np.savez_compressed(target, **tables)
print(f"wrote {len(tables)} colormaps to {target.name} ({target.stat().st_size // 1024} KB)")
