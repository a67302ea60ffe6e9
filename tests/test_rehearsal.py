"""The deploy rehearsal (tools/rehearse.py, `make deploy-rehearsal`): `make deploy` and `make
delete` for the prod stage (tools/deploy.py: the dependency layer when it changed, then the
real `chalice deploy --stage prod`), against moto's AWS on 127.0.0.1, on a copy of the
project whose prod stage also deploys cogify (an upload bucket) and render (a tile queue);
then code-only changes deployed again (app.py, then chalicelib). Everything is read back from
the account, as AWS would hold it, and the API function is run from what the account holds."""

import json

import pytest
import rehearse

from tests.support import ROOT

pytestmark = pytest.mark.rehearsal

ARN = f"arn:aws:lambda:{rehearse.REGION}:{rehearse.ACCOUNT}"


def layer(kind: str, version: int) -> str:
    return f"{ARN}:layer:cogtiler-prod-{kind}:{version}"


def layers_of(function: dict) -> list[str]:
    return [x["Arn"] for x in function["Layers"]]


@pytest.fixture(scope="module")
def rehearsal():
    return rehearse.run(ROOT / "build" / "rehearsal")


def test_the_functions_are_deployed_as_configured(rehearsal):
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = rehearsal["deployed"]["functions"]
    assert set(functions) == {"cogtiler-prod", "cogtiler-prod-seed", "cogtiler-prod-cogify",
                              "cogtiler-prod-render"}
    layers = [layer("dependencies", 1), layer("assets", 1), layer("code", 1)]  # tools/deploy.py
    for name, function in functions.items():
        assert function["Runtime"] == "python3.12", name
        assert layers_of(function) == layers, name
    api = functions["cogtiler-prod"]
    assert api["MemorySize"] == config["lambda_memory_size"]
    assert api["Timeout"] == config["lambda_timeout"] <= 29
    variables = api["Environment"]["Variables"]
    assert variables["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert variables["ALLOWED_SOURCES"] == f"s3://{rehearse.UPLOAD_BUCKET}/cogs/"
    for short in ("cogify", "seed", "render"):
        expected = config["lambda_functions"][short]
        function = functions[f"cogtiler-prod-{short}"]
        assert (function["MemorySize"], function["Timeout"]) == (
            expected["lambda_memory_size"], expected["lambda_timeout"])


def test_uploads_notify_cogify_and_the_queue_feeds_render(rehearsal):
    deployed = rehearsal["deployed"]
    [notification] = deployed["notifications"]
    assert notification["LambdaFunctionArn"] == f"{ARN}:function:cogtiler-prod-cogify"
    assert notification["Events"] == ["s3:ObjectCreated:*"]
    rules = {r["Name"].lower(): r["Value"] for r in notification["Filter"]["Key"]["FilterRules"]}
    assert rules == {"prefix": "uploads/"}
    [mapping] = deployed["mappings"]
    assert mapping["FunctionArn"] == f"{ARN}:function:cogtiler-prod-render"
    assert mapping["EventSourceArn"].endswith(f":{rehearse.TILE_QUEUE}")


def test_the_rest_api_serves_every_route_through_the_function(rehearsal):
    """Binary media types as the app declares them, and every route of the app a Lambda proxy
    integration to the API function, in what API Gateway holds and in what Chalice sent."""
    from app import app
    api = rehearsal["api"]
    assert api["binaryMediaTypes"] == ["*/*"]
    handler = f"{ARN}:function:cogtiler-prod"
    for path in app.routes:
        methods = api["routes"][path]
        assert "GET" in methods, path
        integration = methods["GET"]
        # (Chalice writes "aws_proxy"; API Gateway upper-cases it, moto keeps it as sent)
        assert integration["type"].upper() == "AWS_PROXY", path
        assert handler in integration["uri"], path
    sent = api["sent"]
    assert sent["swagger"] == "2.0" and set(sent["paths"]) == set(app.routes)
    assert sent["x-amazon-apigateway-binary-media-types"] == ["*/*"]


def test_api_keys_and_cors_origin_reach_api_gateway(rehearsal):
    """The stage requires API keys from one origin: the document Chalice sent declares the
    x-api-key scheme on the routes that read sources (not on the viewer or the docs), and
    the CORS preflight answers with that origin."""
    sent = rehearsal["api"]["sent"]
    assert sent["securityDefinitions"]["api_key"]["name"] == "x-api-key"
    tiles = "/cog/tiles/{tileMatrixSetId}/{z}/{x}/{y}"
    assert sent["paths"][tiles]["get"]["security"] == [{"api_key": []}]
    assert "security" not in sent["paths"]["/"]["get"]
    assert "security" not in sent["paths"]["/openapi.json"]["get"]
    preflight = sent["paths"][tiles]["options"][
        "x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"]
    origin = rehearse.ACCESS["CORS_ORIGINS"]
    assert preflight["method.response.header.Access-Control-Allow-Origin"] == f"'{origin}'"


def test_the_stage_is_throttled_and_its_keys_have_a_usage_plan(rehearsal):
    """Throttling Chalice cannot configure: the stage's rate and burst on every method, and
    (API keys required) a usage plan on the API's stage with that throttle and a daily
    quota, for the operator's keys."""
    access = rehearse.ACCESS
    settings = rehearsal["api"]["method_settings"]["*/*"]
    assert settings["throttlingRateLimit"] == float(access["THROTTLE_RATE_LIMIT"])
    assert settings["throttlingBurstLimit"] == int(access["THROTTLE_BURST_LIMIT"])
    [plan] = rehearsal["redeployed"]["usage_plans"]  # one plan, also after the redeploy
    assert plan["name"] == "cogtiler-prod"
    assert plan["apiStages"] == [{"apiId": rehearsal["deployed"]["apis"][0]["id"],
                                  "stage": "api"}]
    assert plan["throttle"] == {"rateLimit": float(access["THROTTLE_RATE_LIMIT"]),
                                "burstLimit": int(access["THROTTLE_BURST_LIMIT"])}
    assert plan["quota"]["limit"] == int(access["QUOTA_PER_DAY"])
    assert plan["quota"]["period"] == "DAY"


def test_the_first_deploy_publishes_each_layer_once(rehearsal):
    first = rehearsal["first"]
    assert all(record["published"] for record in first["layers"].values())
    assert first["layers"]["dependencies"]["uploaded"] > 30e6  # vendor/, zipped
    assert first["received"] > first["layers"]["dependencies"]["uploaded"]
    assert rehearsal["deployed"]["layers"] == {
        "cogtiler-prod-dependencies": [1], "cogtiler-prod-assets": [1], "cogtiler-prod-code": [1]}


def test_an_app_py_change_uploads_kilobytes(rehearsal):
    """app.py changed, nothing else: no layer published, every function's new code (app.py
    and Chalice's runtime, nothing else) in place, and kilobytes sent to AWS besides the REST
    API's definition (which Chalice sends whole on every deploy: ~9 KB a route, seven
    methods each, under API Gateway's import limit)."""
    second = rehearsal["second"]
    assert not any(record["published"] for record in second["layers"].values())
    assert second["pruned"] == []
    assert rehearsal["redeployed"]["layers"] == rehearsal["deployed"]["layers"]
    assert second["app_files"] == ["app.py", "chalice/__init__.py", "chalice/app.py"]
    before, after = rehearsal["deployed"]["functions"], rehearsal["redeployed"]["functions"]
    for name, function in after.items():
        assert function["CodeSha256"] != before[name]["CodeSha256"], name  # the new app.py
        assert function["CodeSize"] == second["app_zip"], name
        assert layers_of(function) == layers_of(before[name]), name
    assert 0 < second["api_definition"] < 2e6
    assert second["received"] - second["api_definition"] < 400e3  # the four function zips


def test_a_chalicelib_change_publishes_the_code_layer_alone(rehearsal):
    """A module of chalicelib changed: a new version of the code layer only (chalicelib's
    Python; the dependencies and the assets are reused), on every function, the old version
    deleted; and it is sent once, not once per function: the deploy sends what an app.py
    change does plus that layer (base64 in its request)."""
    second, third = rehearsal["second"], rehearsal["third"]
    assert [kind for kind, r in third["layers"].items() if r["published"]] == ["code"]
    assert third["pruned"] == [layer("code", 1)]
    assert rehearsal["code_changed"]["layers"] == {
        "cogtiler-prod-dependencies": [1], "cogtiler-prod-assets": [1], "cogtiler-prod-code": [2]}
    for name, function in rehearsal["code_changed"]["functions"].items():
        assert layers_of(function) == [layer("dependencies", 1), layer("assets", 1),
                                       layer("code", 2)], name
    code = third["layers"]["code"]["uploaded"]
    functions = len(rehearsal["code_changed"]["functions"])
    assert 0 < code * 4 / 3 < third["received"] - second["received"] + 20e3
    assert third["received"] < second["received"] + code * 4 / 3 + 20e3 < \
        second["received"] + functions * code  # the code once, not once per function


def test_the_deployed_function_serves_tiles(rehearsal):
    """The API function as the account holds it after the code-only deploys (its zip, its
    three layers unpacked in order as Lambda does) answers API Gateway events through the
    Lambda runtime client: tiles in every format, info, errors (tools/verify_package.py)."""
    running = rehearsal["running"]
    assert running.failures == []
    assert 0 < running.init < running.cold_start


def test_delete_leaves_nothing_behind(rehearsal):
    assert "Deleting Rest API" in rehearsal["delete_output"]
    assert "Deleting layer version" in rehearsal["delete_output"]
    assert "Deleting usage plan" in rehearsal["delete_output"]
    left = rehearsal["left"]
    assert left == {"functions": {}, "layers": {}, "apis": [], "roles": [],
                    "notifications": [], "mappings": [], "usage_plans": []}
