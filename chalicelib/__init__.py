"""cogtiler engine: everything that is not HTTP routing, arranged by layer.

Lower layers never import upper ones (tests/test_architecture.py walks the imports):

    core -> grids -> pixels -> sources -> readers -> operations -> api -> jobs

``core`` (errors, settings, records, geometry), ``grids`` (tile matrix sets), ``pixels``
(expression, render, colormaps, formats, encoders, statistics, pixel selection), ``sources``
(allow-list and egress, datasets, documents, AWS clients), ``readers`` (the Reader protocol,
GeoTIFF reading and its planning, STAC items, mosaics), ``operations`` (one function per API
operation: read -> process -> render -> encode), ``api`` (routes, parameters, middleware,
OpenAPI), ``jobs`` (cogify, tile cache, mosaic building). docs/architecture.md tells where a
new route, parameter, format, algorithm or source kind goes. Subpackages' ``__init__`` files
stay empty, so that importing one module imports only what it needs.
"""

import sys as _sys

# rasterio.session imports boto3 whenever it is importable, and on Lambda it always is (the
# runtime ships it): about 0.2 s of every cold start, for AWS sessions the tiler never uses
# (GDAL reads the role's credentials from the environment itself). rasterio is imported here
# with boto3 hidden, which leaves rasterio.session without it; boto3 itself stays importable
# (chalicelib.sources.aws uses it for the pure functions).
if "boto3" not in _sys.modules:
    _sys.modules["boto3"] = None  # type: ignore[assignment]  # `import boto3` raises ImportError while this is set
    try:
        import rasterio.session  # noqa: F401
    finally:
        del _sys.modules["boto3"]
