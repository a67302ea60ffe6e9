"""cogtiler engine: everything that is not HTTP routing.

The data flow, one module per step:

    params (declared parameters -> records of ``models``) -> sources (allow-list -> GDAL path)
    -> datasets (open, cache) -> reader (masked arrays for tile/part/point, on the grids of
    ``tilematrixsets``) -> render (expression, rescale, colormap) -> encode (per ``formats``)

``tiler`` is the front door (one function per operation); ``routes`` and ``openapi`` turn
the route declarations of ``app.py`` into Chalice routes and an OpenAPI document; ``wmts``
writes WMTS capabilities. ``errors`` holds the one exception family; ``settings`` reads the
environment once.
"""

import sys as _sys

# rasterio.session imports boto3 whenever it is importable, and on Lambda it always is (the
# runtime ships it): about 0.2 s of every cold start, for AWS sessions the tiler never uses
# (GDAL reads the role's credentials from the environment itself). rasterio is imported here
# with boto3 hidden, which leaves rasterio.session without it; boto3 itself stays importable
# (chalicelib.aws uses it for the pure functions).
if "boto3" not in _sys.modules:
    _sys.modules["boto3"] = None  # `import boto3` raises ImportError while this is set
    try:
        import rasterio.session  # noqa: F401
    finally:
        del _sys.modules["boto3"]
