"""The route table as a mechanism, on an app of its own: POST routes with a body parameter
(parsed, refused with a 400 when malformed, described as the OpenAPI requestBody), GET and
POST on one path, 405s naming what the path takes, and the middleware on every answer."""

import json

import pytest
from chalice import Chalice, Response
from chalice.test import Client

from chalicelib.api import openapi
from chalicelib.api.params import LONLAT, Param, json_body
from chalicelib.api.routes import Returns, RouteTable
from chalicelib.core.errors import BadRequest
from chalicelib.core.settings import Settings
from tests.support import ROOT

JSON = Returns(("application/json",), "JSON")
FEATURE = Param("feature", "A GeoJSON Feature", "object", json_body, required=True,
                where="body", media_type="application/geo+json")


def _feature_type(request):
    body = request.values.feature
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise BadRequest("the body must be a GeoJSON Feature")
    return {"type": body["type"], "point": request.values.lonlat}


@pytest.fixture(scope="module")
def table():
    app = Chalice(app_name="routes-test")
    app.api.binary_types = ["*/*"]
    api = RouteTable(app, Response, Settings())
    api.get("/shapes/{lonlat}", "A point", params=(LONLAT,), returns=JSON)(
        lambda r: {"point": r.values.lonlat})
    api.post("/shapes/{lonlat}", "A feature at a point", params=(LONLAT, FEATURE),
             returns=JSON)(_feature_type)
    api.post("/only-post", "Post only", params=(FEATURE,), returns=JSON)(_feature_type)
    return app, api


@pytest.fixture
def http(table):
    with Client(table[0], stage_name="test", project_dir=str(ROOT)) as client:
        yield client.http


def test_a_post_route_reads_its_body(http):
    body = json.dumps({"type": "Feature", "geometry": None, "properties": {}})
    response = http.post("/shapes/1.5,2", body=body,
                         headers={"Content-Type": "application/geo+json", "Accept": "*/*"})
    assert response.status_code == 200, response.body
    assert json.loads(response.body) == {"type": "Feature", "point": [1.5, 2.0]}
    # the GET of the same path is still its own route
    assert json.loads(http.get("/shapes/1.5,2").body) == {"point": [1.5, 2.0]}


@pytest.mark.parametrize("body, words", [
    ("", "missing 'feature'"),
    ("{not json", "not valid JSON"),
    ('{"type": "FeatureCollection"}', "must be a GeoJSON Feature"),
])
def test_a_bad_body_is_a_400_that_says_why(http, body, words):
    response = http.post("/shapes/1,2", body=body, headers={"Accept": "*/*"})
    assert response.status_code == 400
    assert words in json.loads(response.body)["Message"]


def test_a_body_that_is_not_utf8_is_a_400(http):
    response = http.post("/only-post", body=b"\xff\xfe{}", headers={"Accept": "*/*"})
    assert response.status_code == 400 and "UTF-8" in json.loads(response.body)["Message"]


def test_other_methods_get_a_405_naming_what_the_path_takes(http):
    both = http.put("/shapes/1,2", body="{}", headers={"Accept": "*/*"})
    assert both.status_code == 405 and both.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert "use GET or POST" in json.loads(both.body)["Message"]
    only = http.get("/only-post")
    assert only.status_code == 405 and only.headers["Allow"] == "POST, OPTIONS"
    head = http.head("/shapes/1,2")
    assert head.status_code == 200 and head.body == b""


def test_the_openapi_document_has_the_body_as_request_body(table):
    document = openapi.document(table[1].routes, "", Settings())
    operations = document["paths"]["/shapes/{lonlat}"]
    assert set(operations) == {"get", "post"}
    post = operations["post"]
    assert post["operationId"] == "postShapesLonlat"
    assert post["requestBody"]["required"] is True
    assert set(post["requestBody"]["content"]) == {"application/geo+json"}
    names = [p["$ref"].rsplit("/", 1)[1] for p in post["parameters"]]
    assert names == ["lonlat"]  # the body is not a parameter
    from openapi_spec_validator import validate
    validate(document)


def test_a_route_is_declared_once_per_method():
    app = Chalice(app_name="twice")
    api = RouteTable(app, Response, Settings())
    api.get("/x", "x", returns=JSON)(lambda r: {})
    with pytest.raises(ValueError, match="declared twice"):
        api.get("/x", "x", returns=JSON)(lambda r: {})
    with pytest.raises(ValueError, match="one body parameter"):
        api.post("/y", "y", returns=JSON)(lambda r: {})  # a POST without a body


def _variable_children(paths) -> dict[str, set[str]]:
    children: dict[str, set[str]] = {}
    for path in paths:
        parts = path.strip("/").split("/")
        for i, part in enumerate(parts):
            if part.startswith("{"):
                children.setdefault("/" + "/".join(parts[:i]), set()).add(part)
    return children


def test_each_resource_has_one_variable_child_as_api_gateway_requires():
    """API Gateway refuses a resource with two variable children ("A sibling ({z}) of this
    resource already has a variable path part -- only one is allowed"), which chalice
    local, the test client and moto all accept: the whole app's resources are checked
    here, and a table of the test's own shows the renaming at work."""
    from app import app
    clashes = {p: n for p, n in _variable_children(app.routes).items() if len(n) > 1}
    assert not clashes
    assert len(_variable_children([r.path for r in __import__("app").api.routes])[
        "/cog/tiles"]) == 2  # the declarations do clash: the registration resolves it

    own = Chalice(app_name="siblings")
    own.api.binary_types = ["*/*"]
    table = RouteTable(own, Response, Settings())
    tms, z, x, y = (Param(name, name, "string", lambda text, p, c: text, where="path",
                          required=True) for name in ("tileMatrixSetId", "z", "x", "y"))

    @table.get("/t/{z}/{x}/{y}", "short", params=(z, x, y), returns=JSON)
    @table.get("/t/{tileMatrixSetId}/{z}/{x}/{y}", "long", params=(tms, z, x, y),
               returns=JSON)
    @table.get("/t/{tileMatrixSetId}", "one", params=(tms,), returns=JSON)
    def view(r):
        return {name: r.values.get(name) for name in ("tileMatrixSetId", "z", "x", "y")}

    assert sorted(own.routes) == ["/t/{tileMatrixSetId}", "/t/{tileMatrixSetId}/{z}/{x}",
                                  "/t/{tileMatrixSetId}/{z}/{x}/{y}"]
    with Client(own, stage_name="test", project_dir=str(ROOT)) as client:
        assert client.http.get("/t/9/1/2").json_body == {
            "tileMatrixSetId": None, "z": "9", "x": "1", "y": "2"}  # named as declared
        assert client.http.get("/t/WebMercatorQuad/9/1/2").json_body == {
            "tileMatrixSetId": "WebMercatorQuad", "z": "9", "x": "1", "y": "2"}
        assert client.http.get("/t/WebMercatorQuad").json_body["tileMatrixSetId"] == \
            "WebMercatorQuad"
    with pytest.raises(ValueError, match="same API Gateway resource"):
        table.get("/t/{a}/{b}/{c}", "again", params=(), returns=JSON)(lambda r: {})
    with pytest.raises(ValueError, match="declare the longer route first"):
        table.get("/u/{x}", "x", params=(), returns=JSON)(lambda r: {})
        table.get("/u/{y}/{x}/{z}", "yxz", params=(), returns=JSON)(lambda r: {})
