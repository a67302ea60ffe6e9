"""Who may call the API, per stage: API keys on the routes that read sources, the origins CORS
admits, the deepest zoom served. Open by default (dev, `chalice local`, the test stage)."""

import json
import subprocess
import sys

import mercantile
import pytest

from tests.support import ACCEPT_IMAGE, ROOT, tile_path

DEMO = "chalicelib/demo/demo.tif"


@pytest.fixture
def demo_tile(client):
    """A tile at the demo's deepest zoom, at its centre."""
    info = client.http.get(f"/cog/info?url={DEMO}").json_body
    west, south, east, north = info["bounds"]
    return mercantile.tile((west + east) / 2, (south + north) / 2, info["maxzoom"])

#: Run in a fresh interpreter: the app reads API_KEY_REQUIRED and CORS_ORIGINS when it is
#: loaded (as `chalice deploy` loads it with the stage's variables), so each setting needs
#: its own import. Prints what Chalice would send to API Gateway and what the API documents.
PROBE = """
import json
from chalice.deploy.swagger import SwaggerGenerator
from chalice.test import Client
from app import app
generator = SwaggerGenerator("us-east-1", {"api_handler_arn": "arn:aws:lambda:x"})
swagger = generator.generate_swagger(app)
with Client(app, stage_name="test", project_dir=".") as client:
    document = client.http.get("/openapi.json").json_body
print(json.dumps({"swagger": swagger, "document": document,
                  "cors": app.api.cors and app.api.cors.allow_origin}))
"""


def probe(**env) -> dict:
    import os
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_open_by_default():
    found = probe()
    assert "securityDefinitions" not in found["swagger"]
    assert not any("security" in op for ops in found["swagger"]["paths"].values()
                   for op in ops.values())
    assert "securitySchemes" not in found["document"]["components"]
    assert found["cors"] == "*"


def test_api_keys_guard_the_routes_that_read_sources():
    """With API_KEY_REQUIRED the REST API Chalice sends to API Gateway requires the
    x-api-key header (a usage plan's key) on every route that opens a source, and only
    there: the viewer, the documentation, colormaps and tile matrix sets stay open."""
    found = probe(API_KEY_REQUIRED="true")
    swagger, document = found["swagger"], found["document"]
    assert swagger["securityDefinitions"]["api_key"] == {
        "type": "apiKey", "name": "x-api-key", "in": "header"}
    guarded = {path for path, ops in swagger["paths"].items()
               if ops.get("get", {}).get("security") == [{"api_key": []}]}
    from app import api
    for path in ("/cog/tiles/{z}/{x}/{y}", "/cog/info", "/cog/point/{lonlat}",
                 "/cog/WMTSCapabilities.xml", "/stac/tiles/{z}/{x}/{y}",
                 "/mosaicjson/tilejson.json", "/stac/assets", "/cog/tiles/{tileMatrixSetId}"):
        assert api.resource_of(path) in guarded, path
    for path in ("/", "/docs", "/openapi.json", "/healthz", "/colorMaps",
                 "/tileMatrixSets/{tileMatrixSetId}"):
        assert path not in guarded, path
    # our own OpenAPI document says the same
    scheme = document["components"]["securitySchemes"]["api_key"]
    assert scheme["in"] == "header" and scheme["name"] == "x-api-key"
    documented = {api.resource_of(path) for path, ops in document["paths"].items()
                  if any(op.get("security") == [{"api_key": []}] for op in ops.values())}
    assert documented == guarded & {api.resource_of(path) for path in document["paths"]}


def test_a_single_cors_origin_is_the_preflights():
    assert probe(CORS_ORIGINS="https://maps.example.org")["cors"] == "https://maps.example.org"
    assert probe(CORS_ORIGINS="")["cors"] is False  # no CORS at all


def test_a_list_of_cors_origins_names_the_callers_origin(client, monkeypatch, demo_tile):
    monkeypatch.setenv("CORS_ORIGINS", "https://maps.example.org, https://gis.example.com")
    path = tile_path(demo_tile, suffix=".png", url=DEMO)
    for origin in ("https://maps.example.org", "https://gis.example.com"):
        response = client.http.get(path, headers={**ACCEPT_IMAGE, "Origin": origin})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Vary"] == "Origin"  # caches keep one answer per origin
    refused = client.http.get(path, headers={**ACCEPT_IMAGE, "Origin": "https://evil.example"})
    assert refused.headers["Access-Control-Allow-Origin"] != "https://evil.example"
    errors = client.http.get("/cog/info?url=nowhere.tif",
                             headers={"Origin": "https://gis.example.com"})
    assert errors.status_code == 403  # errors too, so a page can show them
    assert errors.headers["Access-Control-Allow-Origin"] == "https://gis.example.com"


def test_any_origin_by_default(client, demo_tile):
    response = client.http.get(tile_path(demo_tile, suffix=".png", url=DEMO),
                               headers={**ACCEPT_IMAGE, "Origin": "https://anyone.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_max_zoom_limits_tiles_and_documents(client, monkeypatch, demo_tile):
    limit = demo_tile.z - 1
    monkeypatch.setenv("MAX_ZOOM", str(limit))
    path = tile_path(demo_tile, suffix=".png", url=DEMO)
    deeper = client.http.get(path, headers=ACCEPT_IMAGE)
    assert deeper.status_code == 400
    assert f"MAX_ZOOM={limit}" in deeper.json_body["Message"]
    parent = mercantile.parent(demo_tile)
    assert client.http.get(tile_path(parent, suffix=".png", url=DEMO),
                           headers=ACCEPT_IMAGE).status_code == 200
    tilejson = client.http.get(f"/cog/tilejson.json?url={DEMO}").json_body
    assert tilejson["maxzoom"] == limit
    wmts = client.http.get(f"/cog/WMTSCapabilities.xml?url={DEMO}").body.decode()
    assert f"<ows:Identifier>{limit + 1}</ows:Identifier>" not in wmts
    assert f"<ows:Identifier>{limit}</ows:Identifier>" in wmts
    monkeypatch.delenv("MAX_ZOOM")
    assert client.http.get(path, headers=ACCEPT_IMAGE).status_code == 200
