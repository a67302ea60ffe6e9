"""Build a MosaicJSON from GeoTIFFs on this machine (what the `mosaic` Lambda function does).

    .venv/bin/python tools/make_mosaic.py NAME SOURCE [SOURCE...] [--quadkey-zoom Z] [--overwrite]

A SOURCE is a GeoTIFF (local path, s3://bucket/key, https://...) or a folder / S3 prefix
ending in "/" whose GeoTIFFs are all taken. The sources you name are the allow-list here
(you are the operator); the tiler serving the mosaic needs them on its own ALLOWED_SOURCES.
Writes NAME.json in the current folder (never over an existing file unless --overwrite).
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.core import settings
from chalicelib.core.errors import TilerError
from chalicelib.jobs import mosaics


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name")
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--quadkey-zoom", type=int)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    sources = [os.path.abspath(s) + ("/" if s.endswith("/") else "") if "://" not in s else s
               for s in args.sources]
    config = settings.Settings(allowed_sources=tuple(
        s if s.endswith("/") else s.rsplit("/", 1)[0] + "/" for s in sources),
        gdal_options=settings.current().gdal_options)
    try:
        urls = []
        for source in sources:
            urls += mosaics.list_prefix(source, config) if source.endswith("/") else [source]
        document = mosaics.build(urls, config, args.quadkey_zoom, args.name)
        path = mosaics.write(document, f"{args.name}.json", overwrite=args.overwrite)
    except TilerError as exc:
        print(f"make_mosaic: {exc.message}", file=sys.stderr)
        return 2
    print(f"wrote {path}: {len(set(urls))} files, {len(document['tiles'])} quadkeys at zoom "
          f"{document['quadkey_zoom']}, zooms {document['minzoom']}-{document['maxzoom']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
