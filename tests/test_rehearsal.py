"""The deploy rehearsal (tools/rehearse.py, `make deploy-rehearsal`): `make deploy` and `make
delete` for the prod stage (tools/deploy.py: the dependency layer when it changed, then the
real `chalice deploy --stage prod`), against moto's AWS on 127.0.0.1, on a copy of the
project whose prod stage also deploys cogify (an upload bucket) and render (a tile queue);
then a code-only change deployed again. Everything is read back from the account, as AWS
would hold it."""

import json
import sys

import pytest

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import rehearse  # noqa: E402

ACCOUNT = "123456789012"  # moto's
ARN = f"arn:aws:lambda:{rehearse.REGION}:{ACCOUNT}"


@pytest.fixture(scope="module")
def rehearsal():
    return rehearse.run(ROOT / "build" / "rehearsal")


def test_the_functions_are_deployed_as_configured(rehearsal):
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = rehearsal["deployed"]["functions"]
    assert set(functions) == {"cogtiler-prod", "cogtiler-prod-seed", "cogtiler-prod-cogify",
                              "cogtiler-prod-render"}
    layer = f"{ARN}:layer:cogtiler-prod-dependencies:1"  # published by tools/deploy.py
    for name, function in functions.items():
        assert function["Runtime"] == "python3.12", name
        assert [x["Arn"] for x in function["Layers"]] == [layer], name  # dependencies
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
    assert sent["paths"]["/cog/tiles/{z}/{x}/{y}"]["get"]["security"] == [{"api_key": []}]
    assert "security" not in sent["paths"]["/"]["get"]
    assert "security" not in sent["paths"]["/openapi.json"]["get"]
    preflight = sent["paths"]["/cog/tiles/{z}/{x}/{y}"]["options"][
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


def test_a_code_only_redeploy_uploads_the_app_alone(rehearsal):
    """app.py changed, vendor/ did not: no new layer version, every function's code a zip of
    the app alone (< 1 MB), its new code in place, and a small fraction of the first
    deploy's bytes sent to AWS (the four functions each get the app zip)."""
    first, second = rehearsal["first"], rehearsal["second"]
    assert first["layer"]["published"] and first["layer"]["uploaded"] > 30e6
    assert not second["layer"]["published"] and second["layer"]["uploaded"] == 0
    assert rehearsal["redeployed"]["layers"] == {"cogtiler-prod-dependencies": [1]}
    before, after = rehearsal["deployed"]["functions"], rehearsal["redeployed"]["functions"]
    for name, function in after.items():
        assert function["CodeSize"] < 1e6, name
        assert function["CodeSha256"] != before[name]["CodeSha256"], name  # the new app.py
        assert [x["Arn"] for x in function["Layers"]] == [first["layer"]["arn"]], name
    assert second["app_zip"] < 1e6
    assert second["received"] < 5e6 and second["received"] < first["received"] / 8


def test_delete_leaves_nothing_behind(rehearsal):
    assert "Deleting Rest API" in rehearsal["delete_output"]
    assert "Deleting layer version" in rehearsal["delete_output"]
    assert "Deleting usage plan" in rehearsal["delete_output"]
    left = rehearsal["left"]
    assert left == {"functions": {}, "layers": {}, "apis": [], "roles": [],
                    "notifications": [], "mappings": [], "usage_plans": []}
