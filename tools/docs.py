"""The README's parameter tables, generated from the declarations in chalicelib/api/params.py.

    .venv/bin/python tools/docs.py          # rewrite the tables in README.md
    .venv/bin/python tools/docs.py --check  # fail if README.md is out of step (the tests do)
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chalicelib.api import params  # noqa: E402

README = ROOT / "README.md"
START = "<!-- parameters: generated from chalicelib/api/params.py by tools/docs.py -->"
END = "<!-- /parameters -->"

SECTIONS = [
    ("Every data route", (params.URL,)),
    ("What to read and how to show it (tiles, preview, bbox, point, statistics, TileJSON, "
     "WMTS; point takes the first three)", params.SELECTION + params.STYLE),
    ("Post-processing (tiles, preview, bbox, statistics, TileJSON, WMTS; see `/algorithms`)",
     params.POST_PROCESS),
    ("Tiles", (params.TILESIZE, params.BUFFER, params.PADDING)),
    ("Preview and bbox (`/cog/preview` also takes `format`)", params.IMAGE + (params.FORMAT,)),
    ("Statistics", params.STATISTICS),
    ("Coordinates and output CRS (point and bbox take `coord_crs`; bbox, preview and the "
     "GeoJSON routes `dst_crs`)", (params.COORD_CRS, params.DST_CRS)),
    ("GeoJSON (`POST .../statistics`, `POST .../feature`): besides the statistics ones; "
     "`max_size` defaults to the data's resolution", (params.PART_MAX_SIZE,
                                                       params.COVER_SCALE)),
    ("TileJSON", params.TILEJSON),
    ("WMTS", params.WMTS),
    ("STAC items (`/stac/...`): what to read, instead of `bidx`/`expression` above",
     params.STAC_SELECTION[:4]),
    ("Mosaics (`/mosaicjson/...`): besides the `/cog` ones", (params.PIXEL_SELECTION,)),
    ("Catalog searches (`/collections/{collection_id}/...`): the search, besides the STAC "
     "item and mosaic ones (`/searches/{search_id}/...` take `max_items`)",
     params.SEARCH_QUERY),
]


def tables() -> str:
    parts = [START]
    for title, declared in SECTIONS:
        parts += ["", f"**{title}**", "", params.markdown(declared)]
    return "\n".join(parts + ["", END])


def updated(text: str) -> str:
    start, end = text.index(START), text.index(END) + len(END)
    return text[:start] + tables() + text[end:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = README.read_text()
    if args.check:
        if updated(text) != text:
            print("README.md's parameter tables are out of step: run tools/docs.py")
            return 1
        return 0
    README.write_text(updated(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
