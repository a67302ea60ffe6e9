"""2. Warm tile through the Lambda handler: API Gateway REST proxy events into cogtiler's
``app.app`` against titiler (``titiler.core`` TilerFactory) behind Mangum, same tiles.

Both answer in this process, called as Lambda calls them, with a warm dataset cache.

    .venv/bin/python bench/handler.py [--per-zoom N]
"""

import statistics

import common

FILES = {  # name -> extra query (the same on both sides)
    "RGB.byte.tif": {},
    "cog.tif": {"rescale": "1,7872"},
    "dem_float_nodata.tif": {"rescale": "600,2400", "colormap_name": "terrain"},
    "large_rgb_3857.tif": {},
}
FORMATS = ("png", "webp")


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
                response = cogtiler(event(f"/cog/tiles/{t.z}/{t.x}/{last}",
                                          "/cog/tiles/{z}/{x}/{y}",
                                          {"z": str(t.z), "x": str(t.x), "y": last}, query),
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
    common.save("handler", {"rows": rows, "ratio": overall, "target": 0.7})


if __name__ == "__main__":
    main()
