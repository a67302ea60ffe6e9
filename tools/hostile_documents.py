"""Documents that STAC and MosaicJSON readers must survive, written for the fuzzers (the
property test in tests/test_fuzz.py and schemathesis in tools/fuzz_api.py): each must get a
4xx (or a 200 where it still makes sense), never a 5xx, a hang or a traceback.

    .venv/bin/python tools/hostile_documents.py FOLDER   # writes them, prints their paths
"""

import gzip
import json
import math
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Sources off any allow-list, as hrefs of a document.
NOT_ALLOWED = ["/etc/passwd", "file:///etc/passwd", "http://169.254.169.254/x.tif",
               "/vsicurl/http://127.0.0.1/x.tif", "chalicelib/demo/../../app.py",
               "http://[::ffff:127.0.0.1]/x.tif", "s3://elsewhere/x.tif"]


def write_hostile_documents(folder: Path) -> tuple[list[str], list[str]]:
    """STAC items and MosaicJSON documents no tiler should choke on: deep nesting, NaN and
    Infinity, lone surrogates, thousands of assets or quadkeys, hrefs off the allow-list,
    wrong types everywhere, a gzip bomb, not JSON at all. Returns (items, mosaics)."""
    folder = folder / "fuzz_documents"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "chalicelib" / "demo" / "demo.tif", folder / "demo.tif")
    item = json.loads((ROOT / "chalicelib" / "demo" / "item.json").read_text())
    item["assets"] = {"visual": {**item["assets"]["visual"], "href": "demo.tif"}}
    mosaic = json.loads((ROOT / "chalicelib" / "demo" / "mosaic.json").read_text())
    texts = {
        "nested.json": '{"type": "Feature", "assets": ' + "[" * 20_000 + "]" * 20_000 + "}",
        "nan.json": json.dumps({**item, "bbox": [math.nan, 0, math.inf, 1]}),
        "surrogate.json": json.dumps(item).replace('"demo.tif"', '"\\ud800.tif"'),
        "many.json": json.dumps({**item, "assets": {
            f"a{i}": {"href": "demo.tif", "type": "image/tiff"} for i in range(3000)}}),
        "hrefs.json": json.dumps({**item, "assets": {
            f"h{i}": {"href": href} for i, href in enumerate(
                NOT_ALLOWED + ["../../../../etc/passwd", "%00.tif", "", "demo.tif?x=1",
                               "data:image/tiff;base64,AAAA", "nested.json"])}}),
        "types.json": json.dumps({**item, "assets": [1, 2], "properties": None, "bbox": "x"}),
        "array.json": "[]", "string.json": '"Feature"', "null.json": "null", "empty.json": "",
        "odd_mosaic.json": json.dumps({**mosaic, "minzoom": 9, "maxzoom": 2,
                                       "bounds": [1, 2, 3], "tiles": {"0320231": "demo.tif",
                                                                      "9": ["demo.tif"],
                                                                      "": [None, 5]}}),
        "many_mosaic.json": json.dumps({**mosaic, "quadkey_zoom": 12, "tiles": {
            format(i, "012b").replace("1", "3"): ["demo.tif"] for i in range(4096)}}),
        "self_mosaic.json": json.dumps({**mosaic, "tiles": {"0320231": [
            "self_mosaic.json", "nan.json", "demo.tif"]}}),
    }
    for name, text in texts.items():
        (folder / name).write_text(text)
    (folder / "bytes.json").write_bytes(b"\xff\xfe{\x00")
    with gzip.open(folder / "bomb.json", "wb", compresslevel=9) as bomb:  # 64 MB of spaces
        for _ in range(64):
            bomb.write(b" " * 2**20)
    names = sorted(texts) + ["bytes.json", "bomb.json"]
    items = [str(folder / n) for n in names if "mosaic" not in n]
    mosaics = [str(folder / n) for n in names if "mosaic" in n or n in ("nan.json", "bomb.json")]
    return items, mosaics


if __name__ == "__main__":
    items, mosaics = write_hostile_documents(Path(sys.argv[1]))
    print("\n".join(items + mosaics))
