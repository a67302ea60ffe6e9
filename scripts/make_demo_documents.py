"""Regenerate the demo's STAC item and MosaicJSON: chalicelib/demo/item.json and mosaics.json.

Both describe the built-in demo raster (demo.tif, beside them) with a relative href, so the
multi-file routes work out of the box wherever the project is (`chalice local`, Lambda):

    /stac/tiles/{z}/{x}/{y}.png?url=chalicelib/demo/item.json&assets=visual
    /mosaicjson/tiles/{z}/{x}/{y}.png?url=chalicelib/demo/mosaics.json

    .venv/bin/python scripts/make_demo_documents.py
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.core import settings  # noqa: E402
from chalicelib.jobs import mosaics  # noqa: E402
from chalicelib.readers import cog  # noqa: E402

DEMO = ROOT / "chalicelib" / "demo"
config = settings.Settings(allowed_sources=(f"{DEMO}/",))
west, south, east, north = cog.COGReader.open(str(DEMO / "demo.tif"), config) \
    .geographic_bounds
item = {
    "type": "Feature", "stac_version": "1.0.0", "id": "demo",
    "geometry": {"type": "Polygon", "coordinates": [[[west, south], [east, south],
                                                     [east, north], [west, north],
                                                     [west, south]]]},
    "bbox": [west, south, east, north],
    "properties": {"datetime": "1999-12-31T00:00:00Z",
                   "title": "Landsat 7 ETM+ over the Bahamas (rasterio's RGB.byte.tif, CC0)"},
    "links": [],
    "assets": {"visual": {"href": "demo.tif", "title": "True colour (red, green, blue)",
                          "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                          "roles": ["visual", "data"]}},
}
(DEMO / "item.json").write_text(json.dumps(item, indent=1) + "\n")
document = mosaics.build([str(DEMO / "demo.tif")], config, name="demo")
document["tiles"] = {q: ["demo.tif" for _ in files] for q, files in document["tiles"].items()}
(DEMO / "mosaics.json").write_text(json.dumps(document, indent=1) + "\n")
print(f"wrote {DEMO / 'item.json'} and {DEMO / 'mosaics.json'} "
      f"({len(document['tiles'])} quadkeys)")
