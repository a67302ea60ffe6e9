"""Regenerate chalicelib/grids/tms/: the OGC TileMatrixSets that morecantile ships, as data.

morecantile (with pyproj and pydantic) is used here, at development time only: it would add
about 12 MB to the Lambda package. The tiler reads these files and does the tile math itself
over rasterio (chalicelib/grids/tilematrixsets.py); the tests check both against morecantile.

Writes one ``<id>.json`` per set (the OGC 2D TileMatrixSet 2.0 document, as morecantile has
it) and ``index.json``: per set its title, the CRS as rasterio reads it, its URI and URN, and
whether the CRS's first axis is easting/longitude (``x_first``).

    .venv/bin/python scripts/make_tilematrixsets.py
"""

import json
from pathlib import Path

import morecantile
from morecantile.models import CRS_to_uri

TARGET = Path(__file__).resolve().parent.parent / "chalicelib" / "grids" / "tms"


def definitions() -> tuple[dict, dict]:
    """(index, {id: OGC document}) for every set morecantile ships."""
    index, documents = {}, {}
    for tms_id in sorted(morecantile.tms.list()):
        tms = morecantile.tms.get(tms_id)
        document = tms.model_dump(exclude_none=True, mode="json")
        crs = tms.crs._pyproj_crs
        authority, code = crs.to_authority(min_confidence=20)
        index[tms_id] = {
            "title": tms.title,
            "crs": f"{authority}:{code}",
            # the document's own URI where it gives one (OGC/1.3/CRS84, not OGC/0/CRS84)
            "uri": document["crs"] if document["crs"].startswith("http") else CRS_to_uri(crs),
            "urn": f"urn:ogc:def:crs:{authority}:{'1.3' if authority == 'OGC' else ''}:{code}",
            "x_first": not tms._invert_axis,
        }
        documents[tms_id] = document
    return index, documents


def main() -> None:
    index, documents = definitions()
    TARGET.mkdir(exist_ok=True)
    for old in TARGET.glob("*.json"):
        old.unlink()
    for tms_id, document in documents.items():
        (TARGET / f"{tms_id}.json").write_text(json.dumps(document, separators=(",", ":")))
    (TARGET / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    size = sum(p.stat().st_size for p in TARGET.glob("*.json"))
    print(f"wrote {len(documents)} tile matrix sets to {TARGET} ({size // 1024} KB)")


if __name__ == "__main__":
    main()
