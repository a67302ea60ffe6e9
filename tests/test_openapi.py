"""The OpenAPI document: valid, made from the declarations, served behind a stage prefix, and
truthful: schemathesis, driven by it against `chalice local`, finds no 5xx and no undocumented
status, content type, header or body."""

import base64
import json
import subprocess
import sys

import pytest
from openapi_spec_validator import validate

from chalicelib.api import params
from chalicelib.grids import tilematrixsets
from chalicelib.pixels import colormaps, formats
from tests.support import ROOT


def document(client):
    response = client.http.get("/openapi.json")
    assert response.status_code == 200
    return response.json_body


def parameters(doc, operation) -> dict:
    """An operation's parameters by name, their $refs resolved."""
    found = [doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
             for p in operation["parameters"]]
    return {p["name"]: p for p in found}


def test_the_document_is_valid_openapi(client):
    validate(document(client))


def test_every_route_and_parameter_is_in_it(client):
    from app import api
    doc = document(client)
    paths = doc["paths"]
    listed = [r for r in api.routes if r.listed]
    assert set(paths) == {r.path for r in listed}
    assert "/{proxy+}" not in paths  # the catch-all 404 is not an operation
    for route in listed:
        operation = paths[route.path][route.method.lower()]
        assert list(parameters(doc, operation)) == [p.name for p in route.params
                                                     if p.where != "body"]
        if route.body is not None:  # the body is the operation's requestBody
            assert route.body.media_type in operation["requestBody"]["content"]
        # tiles: outside=204
        tile = any(p.name == "outside" for p in route.params) and "image/png" in \
            route.returns.media_types
        no_content = {"204"} if tile else set()
        assert {"200", *no_content, *map(str, route.errors)} == set(operation["responses"])


def test_enums_come_from_the_registries(client):
    doc = document(client)
    tile = doc["paths"]["/cog/tiles/{tileMatrixSetId}/{z}/{x}/{y}"]["get"]
    by_name = parameters(doc, tile)
    assert by_name["tileMatrixSetId"]["schema"]["enum"] == list(tilematrixsets.IDS)
    assert set(by_name["colormap_name"]["schema"]["enum"]) >= set(colormaps.names())
    assert by_name["resampling"]["schema"]["enum"] == list(params.READ_RESAMPLING)
    assert by_name["bidx"]["schema"] == {"type": "array", "items": {
        "type": "integer", "minimum": 1, "maximum": 65535}}
    assert set(tile["responses"]["200"]["content"]) == set(formats.MEDIA_TYPES)
    preview = parameters(doc, doc["paths"]["/cog/preview"]["get"])
    assert preview["format"]["schema"]["enum"] == list(formats.NAMES)
    assert preview["max_size"]["schema"]["maximum"] == 4096
    wmts = parameters(doc, doc["paths"]["/cog/WMTSCapabilities.xml"]["get"])
    assert wmts["tile_format"]["schema"]["default"] == "png"  # not TileJSON's tile_format


def test_limits_follow_the_settings(client, monkeypatch):
    monkeypatch.setenv("MAX_IMAGE_SIZE", "2000")
    doc = document(client)
    by_name = parameters(doc, doc["paths"]["/cog/preview"]["get"])
    assert by_name["max_size"]["schema"]["maximum"] == by_name["width"]["schema"]["maximum"] \
        == 2000


def test_errors_share_one_shape(client):
    doc = document(client)
    error = doc["components"]["schemas"]["Error"]
    assert error["required"] == ["Code", "Message"] and error["additionalProperties"] is False
    info = doc["paths"]["/cog/info"]["get"]["responses"]
    assert info["403"] == {"$ref": "#/components/responses/Error403"}


def test_behind_an_api_gateway_stage_the_server_is_the_stage():
    from app import app
    event = {
        "resource": "/openapi.json", "path": "/openapi.json", "httpMethod": "GET",
        "headers": {"Host": "abc.execute-api.us-east-1.amazonaws.com", "Accept": "*/*"},
        "multiValueHeaders": {}, "pathParameters": None, "stageVariables": None, "body": None,
        "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "requestContext": {"resourcePath": "/openapi.json", "httpMethod": "GET",
                           "path": "/api/openapi.json", "stage": "api"},
        "isBase64Encoded": False,
    }
    response = app(event, None)
    body = response["body"]
    body = json.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body)
    assert body["servers"] == [{"url": "/api"}]


def test_docs_page_points_at_the_document(client):
    response = client.http.get("/docs", headers={"Accept": "text/html"})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert b'"/openapi.json"' in response.body and b"swagger-ui" in response.body


@pytest.mark.fuzz
def test_schemathesis_finds_nothing():
    """Bounded: 25 examples per operation, a random and a real-raster `url` (the GeoJSON
    routes on real rasters without the coverage phase), about 12 minutes for 85 operations
    (`make fuzz` runs more)."""
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "fuzz_api.py"),
                             "--examples", "25", "--max-time", "900"],
                            capture_output=True, text=True, timeout=2000)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    total = int(result.stdout.split(" operations")[0].rsplit(" ", 1)[1])
    repeats = int(result.stdout.split(" repeats")[0].rsplit(" ", 1)[1])
    catalog = int(result.stdout.split(" catalog")[0].rsplit(" ", 1)[1])
    runs = {line.split()[0]: line for line in result.stdout.splitlines()
            if "operations " in line and "test cases" in line}
    assert set(runs) == {"random-url", "real-rasters", "real-shapes"}, result.stdout
    assert all("failures 0," in line for line in runs.values()), result.stdout

    def tested(mode):
        return int(runs[mode].split("operations ")[1].split(",")[0])
    # every operation but the literal-format repeats is tested: with random urls (all but
    # the document itself; the catalog's against a real STAC API), and on the real rasters
    # (GET routes through the coverage phase, the document too; the GeoJSON POST routes
    # apart; not the catalog's, which take no url)
    assert tested("random-url") == total - 1 - repeats
    assert tested("real-rasters") + tested("real-shapes") == total - repeats - catalog
    assert catalog > 0
    assert tested("real-shapes") > 0
    for mode in ("real-rasters", "real-shapes"):
        assert "200:" in runs[mode], runs[mode]  # the real rasters were read, not refused
