"""2. Warm tile through the Lambda handler: API Gateway REST proxy events into cogtiler's
``app.app`` against titiler (``titiler.core`` TilerFactory) behind Mangum, same tiles; and
PNG tiles through the handler against rio-tiler's ``Reader.tile`` + ``render`` alone (no
HTTP layer on its side) over every benchmark file, with the bytes of both.

All answer in this process, called as Lambda calls them, with a warm dataset cache.

    .venv/bin/python bench/handler.py [--per-zoom N]
"""

import base64
import statistics

import common
from warm_tiles import STYLE

FILES = {  # name -> extra query (the same on both sides)
    "RGB.byte.tif": {},
    "cog.tif": {"rescale": "1,7872"},
    "dem_float_nodata.tif": {"rescale": "600,2400", "colormap_name": "terrain"},
    "large_rgb_3857.tif": {},
}
FORMATS = ("png", "webp")
#: Terrain tiles (algorithm=...) on the DEM, PNG, beside titiler's on the same tiles: titiler's
#: own recipe for a hillshade (buffer=3, so that its tile keeps 256 pixels) and terrain RGB.
ALGORITHMS = {
    "hillshade": {"algorithm": "hillshade", "buffer": "3"},
    "terrainrgb": {"algorithm": "terrainrgb"},
}
DEM = "dem_float_nodata.tif"


#: The API Gateway resource of /cog/tiles/{z}/{x}/{y} (its variables take the names of
#: /cog/tiles/{tileMatrixSetId}/{z}/{x}/{y}'s: one variable child per resource).
TILE_RESOURCE = "/cog/tiles/{tileMatrixSetId}/{z}/{x}"


def tile_parameters(t, last: str) -> dict:
    """The path parameters API Gateway sends for /cog/tiles/{t.z}/{t.x}/{last}."""
    return {"tileMatrixSetId": str(t.z), "z": str(t.x), "x": last}


class Context:
    function_name = "bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self):
        return 25_000


def event(path: str, resource: str, path_parameters: dict, query: dict) -> dict:
    return {
        "resource": resource, "path": path, "httpMethod": "GET",
        "headers": {"Accept": "*/*", "Host": "bench.example.com"},
        "multiValueHeaders": {"Accept": ["*/*"], "Host": ["bench.example.com"]},
        "queryStringParameters": query, "multiValueQueryStringParameters":
            {k: [v] for k, v in query.items()},
        "pathParameters": path_parameters, "stageVariables": None, "body": None,
        "isBase64Encoded": False,
        "requestContext": {"resourcePath": resource, "httpMethod": "GET", "path": f"/api{path}",
                           "stage": "api", "requestId": "bench",
                           "identity": {"sourceIp": "127.0.0.1"}},
    }


def titiler_handler():
    from fastapi import FastAPI
    from mangum import Mangum
    from titiler.core.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from titiler.core.factory import TilerFactory

    api = FastAPI()
    api.include_router(TilerFactory(router_prefix="/cog").router, prefix="/cog")
    add_exception_handlers(api, DEFAULT_STATUS_CODES)
    return Mangum(api, lifespan="off")


def main() -> None:
    args = common.start(__doc__)
    from app import app as cogtiler

    titiler = titiler_handler()
    context = Context()
    rows = []
    print(f"{'file':22} {'fmt':4} {'tiles':>5} {'cogtiler p50/p90 ms':>20} "
          f"{'titiler p50/p90 ms':>20} {'ratio':>6}")
    for name, extra in FILES.items():
        path = str(common.path_of(name))
        tiles = common.sample_tiles(path, args.per_zoom)
        query = {"url": path, **extra}
        for fmt in FORMATS:
            def ours(t, fmt=fmt):
                last = f"{t.y}.{fmt}"
                response = cogtiler(event(f"/cog/tiles/{t.z}/{t.x}/{last}", TILE_RESOURCE,
                                          tile_parameters(t, last), query),
                                    context)
                assert response["statusCode"] == 200, response

            def theirs(t, fmt=fmt):
                path_ = f"/cog/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.{fmt}"
                response = titiler(event(path_, "/{proxy+}", {"proxy": path_[1:]}, query),
                                   context)
                assert response["statusCode"] == 200, response

            rows.append(common.compare(name, fmt, tiles, ours, theirs, "titiler"))
    overall = statistics.geometric_mean(r["ratio"] for r in rows)
    print(f"geometric mean of median ratios (cogtiler / titiler+Mangum): {overall:.2f}")
    terrain = algorithm_rows(cogtiler, titiler, context, args.per_zoom)
    png = against_rio_tiler(cogtiler, context, args.per_zoom)
    common.save("handler", {"rows": rows, "ratio": overall, "target": 0.7,
                            "algorithm_rows": terrain, **png})


def algorithm_rows(cogtiler, titiler, context, per_zoom: int) -> list[dict]:
    """Hillshade and terrain-RGB PNG tiles of the DEM, both handlers, the same tiles."""
    path = str(common.path_of(DEM))
    tiles = common.sample_tiles(path, per_zoom)
    rows = []
    print(f"\n{'file':22} {'algorithm':10} {'tiles':>5} {'cogtiler p50/p90 ms':>20} "
          f"{'titiler p50/p90 ms':>20} {'ratio':>6}")
    for name, extra in ALGORITHMS.items():
        query = {"url": path, **extra}

        def ours(t):
            last = f"{t.y}.png"
            response = cogtiler(event(f"/cog/tiles/{t.z}/{t.x}/{last}", TILE_RESOURCE,
                                      tile_parameters(t, last), query), context)
            assert response["statusCode"] == 200, response

        def theirs(t):
            path_ = f"/cog/tiles/WebMercatorQuad/{t.z}/{t.x}/{t.y}.png"
            response = titiler(event(path_, "/{proxy+}", {"proxy": path_[1:]}, query), context)
            assert response["statusCode"] == 200, response

        rows.append(common.compare(DEM, name, tiles, ours, theirs, "titiler"))
    return rows


def against_rio_tiler(cogtiler, context, per_zoom: int) -> dict:
    """PNG tiles through cogtiler's handler against rio-tiler's Reader.tile + render (PNG,
    the same rescale and colormap), every file; the time ratio and the bytes of each."""
    from rio_tiler.colormap import cmap as rio_cmaps
    from rio_tiler.io import Reader

    rows = []
    print(f"\n{'file':22} {'fmt':4} {'tiles':>5} {'handler p50/p90 ms':>20} "
          f"{'rio-tiler p50/p90 ms':>21} {'ratio':>6} {'bytes ratio':>11}")
    for name in common.REAL + common.SYNTHETIC:
        path = str(common.path_of(name))
        tiles = common.sample_tiles(path, per_zoom)
        rescale, cmap_name = STYLE.get(name, (None, None))
        query = {"url": path}
        if rescale:
            query["rescale"] = f"{rescale[0]},{rescale[1]}"
        if cmap_name:
            query["colormap_name"] = cmap_name
        reference = Reader(path)
        palette = rio_cmaps.get(cmap_name) if cmap_name else reference.colormap
        sizes = {"cogtiler": 0, "rio_tiler": 0}

        def ours(t):
            last = f"{t.y}.png"
            response = cogtiler(event(f"/cog/tiles/{t.z}/{t.x}/{last}", TILE_RESOURCE,
                                      tile_parameters(t, last), query), context)
            assert response["statusCode"] == 200, response
            return len(base64.b64decode(response["body"]))

        def theirs(t):
            image = reference.tile(t.x, t.y, t.z)
            if rescale:
                image.rescale(in_range=(rescale,))
            return len(image.render(img_format="PNG", colormap=palette))

        for t in tiles:  # bytes once per tile, outside the timing
            sizes["cogtiler"] += ours(t)
            sizes["rio_tiler"] += theirs(t)
        row = common.compare(name, "png", tiles, ours, theirs, "rio_tiler", end="")
        row["bytes"] = sizes
        row["bytes_ratio"] = sizes["cogtiler"] / sizes["rio_tiler"]
        print(f" {row['bytes_ratio']:11.3f}")
        rows.append(row)
        reference.close()
    real = [r for r in rows if r["file"] in common.REAL]
    ratio = statistics.geometric_mean(r["ratio"] for r in real)
    size = sum(r["bytes"]["cogtiler"] for r in real) / sum(r["bytes"]["rio_tiler"] for r in real)
    print(f"PNG through the handler / rio-tiler, geometric mean over the real COGs: {ratio:.2f} "
          f"(every file: {statistics.geometric_mean(r['ratio'] for r in rows):.2f}); "
          f"bytes {size:.3f} x")
    return {"png_rows": rows, "png_ratio": ratio, "png_target": 0.5, "png_bytes_ratio": size,
            "png_bytes_target": 1.05}


if __name__ == "__main__":
    main()
