"""cogtiler engine: everything that is not HTTP.

The data flow, one module per step:

    params (query -> typed records) -> sources (allow-list -> GDAL path)
    -> datasets (open, cache) -> reader (masked arrays for tile/part/point)
    -> render (expression, rescale, colormap) -> encode (PNG/JPEG/WEBP/GeoTIFF/NPY)

``errors`` holds the one exception family; ``settings`` reads the environment once.
"""
