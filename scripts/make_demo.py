"""Regenerate the built-in demo dataset, chalicelib/demo/demo.tif.

Source: RGB.byte.tif from rasterio's test data (CC0 1.0; a Landsat 7 ETM+ scene of the
Bahamas from USGS, 791x718x3 uint8, EPSG:32618, nodata 0), found in ../shared/data/.
It is rewritten as a Cloud-Optimized GeoTIFF: JPEG (YCbCr) in 256 px tiles with internal
overviews, and the nodata border turned into an internal mask band (lossy JPEG would smear
a nodata value; a mask stays exact). About 200 KB.

    .venv/bin/python scripts/make_demo.py [path/to/RGB.byte.tif]
"""

import sys
from pathlib import Path

import rasterio
from rasterio.io import MemoryFile
from rasterio.shutil import copy

ROOT = Path(__file__).resolve().parent.parent
default = ROOT.parent / "shared" / "data" / "RGB.byte.tif"
source = Path(sys.argv[1]) if len(sys.argv) > 1 else default
target = ROOT / "chalicelib" / "demo" / "demo.tif"

with rasterio.open(source) as src:
    data = src.read()
    mask = src.dataset_mask()
    profile = src.profile
profile.update(driver="GTiff", nodata=None, tiled=True, blockxsize=256, blockysize=256)
with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), MemoryFile() as memfile:
    with memfile.open(**profile) as staging:
        staging.write(data)
        staging.write_mask(mask)
    with memfile.open() as staging:
        copy(staging, str(target), driver="COG", COMPRESS="JPEG", QUALITY="85",
             BLOCKSIZE="256", OVERVIEW_RESAMPLING="AVERAGE")
print(f"wrote {target.relative_to(ROOT)} ({target.stat().st_size // 1024} KB) from {source.name}")
