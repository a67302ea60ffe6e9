"""A deploy rehearsal: `make deploy` (tools/deploy.py, the real `chalice deploy --stage prod`)
against moto's AWS on 127.0.0.1, code-only redeploys, and `make delete`.

A copy of the project (vendor/ built for Lambda) whose prod stage also names an upload bucket
and a tile queue, and requires API keys from one CORS origin, is deployed with
``AWS_ENDPOINT_URL`` pointing at an in-process moto server; then what an account would hold is
checked (tests/test_rehearsal.py): the functions (runtime, memory, timeout, environment,
layers), the S3 notification to cogify with its prefix, the SQS event source mapping to
render, the REST API Chalice sent (binary media types, a Lambda proxy integration on every
route, the API key requirement, the CORS origin), the stage's throttling and usage plan; then
app.py changes and is deployed again (what is uploaded, no layer published), then a module of
chalicelib (the code layer alone); the API function is run from what the account holds; then
the stage is deleted, leaving nothing behind.

Where moto differs from AWS it is adapted here (``adapt_moto``), never the app.

    python tools/rehearse.py      (prints what was deployed; `make deploy-rehearsal` runs the
                                   checks, tests/test_rehearsal.py)
"""

import copy
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import deploy
import package
import policy
import verify_package

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "rehearsal"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's
UPLOAD_BUCKET, TILE_QUEUE, TILE_BUCKET = "rehearsal-uploads", "rehearsal-tiles", "rehearsal-cache"
#: The access options an operator would set on a public stage (README "Who may call the API").
ACCESS = {"API_KEY_REQUIRED": "true", "CORS_ORIGINS": "https://maps.example.org",
          "THROTTLE_RATE_LIMIT": "50", "THROTTLE_BURST_LIMIT": "100", "QUOTA_PER_DAY": "100000"}


def adapt_moto() -> None:
    """Make moto accept what API Gateway accepts from Chalice.

    moto's ImportRestApi/PutRestApi take only (a subset of) OpenAPI 3, and need an
    integration URI even on MOCK integrations; API Gateway imports the Swagger 2.0 document
    Chalice sends, CORS preflight MOCKs included. The document as sent is kept on the API
    (``sent_document``) for the checks, its binary media types applied as API Gateway does.
    """
    from moto.apigateway import models

    if getattr(models.APIGatewayBackend, "_rehearsal", False):
        return
    put, imported = models.APIGatewayBackend.put_rest_api, models.APIGatewayBackend.import_rest_api

    def put_rest_api(self, function_id, api_doc, fail_on_warnings, mode="merge"):
        if "swagger" in api_doc:
            api = self.get_rest_api(function_id)
            api.sent_document = api_doc
            api.binaryMediaTypes = list(api_doc.get("x-amazon-apigateway-binary-media-types", []))
            api_doc = copy.deepcopy({k: v for k, v in api_doc.items() if k != "swagger"})
            api_doc["openapi"] = "3.0.0"
            for methods in api_doc["paths"].values():
                for method in methods.values():
                    integration = method.get("x-amazon-apigateway-integration", {})
                    integration.setdefault("uri", "")
                    integration.setdefault("httpMethod", "POST")
            fail_on_warnings = False
        return put(self, function_id, api_doc, fail_on_warnings, mode)

    def import_rest_api(self, api_doc, fail_on_warnings):
        api_doc = {**api_doc, "info": {"description": "", **api_doc.get("info", {})}}
        return imported(self, api_doc, False)

    models.APIGatewayBackend.put_rest_api = put_rest_api
    models.APIGatewayBackend.import_rest_api = import_rest_api
    models.APIGatewayBackend._rehearsal = True

    # S3 takes notification filter rule names in any case (Chalice sends "Prefix"); moto
    # asserts lower case.
    from moto.s3 import responses
    parse = responses.S3Response._notification_config_from_body

    def notification_config_from_body(self):
        body = self.body.decode() if isinstance(self.body, bytes) else self.body
        self.body = re.sub(r"<Name>(Prefix|Suffix)</Name>",
                           lambda m: f"<Name>{m.group(1).lower()}</Name>", body)
        return parse(self)

    responses.S3Response._notification_config_from_body = notification_config_from_body


@dataclass
class Rehearsal:
    endpoint: str
    project: Path

    def env(self) -> dict:
        """A clean environment: what the stage configures decides what is deployed (chalice
        loads the app with this environment plus the stage's), never the caller's."""
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        return {**keep, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "rehearsal",
                "AWS_SECRET_ACCESS_KEY": "rehearsal", "AWS_DEFAULT_REGION": REGION,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}

    def client(self, service: str):
        import boto3
        return boto3.session.Session(aws_access_key_id="rehearsal",
                                     aws_secret_access_key="rehearsal",
                                     region_name=REGION).client(service,
                                                                endpoint_url=self.endpoint)


def copy_project(target: Path, vendor: Path) -> Path:
    """The project with ``vendor`` as its vendor/, its prod stage also deploying cogify
    (UPLOAD_BUCKET) and render (TILE_QUEUE, TILE_BUCKET)."""
    package.copy_project(target)
    shutil.copytree(vendor, target / "vendor", ignore=shutil.ignore_patterns("README.md"))
    config_path = target / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"]["prod"]["environment_variables"].update(
        {"ALLOWED_SOURCES": f"s3://{UPLOAD_BUCKET}/cogs/", "UPLOAD_BUCKET": UPLOAD_BUCKET,
         "TILE_QUEUE": TILE_QUEUE, "TILE_BUCKET": TILE_BUCKET, **ACCESS})
    config_path.write_text(json.dumps(config, indent=2))
    (target / ".chalice" / "policy-prod.json").write_text(policy.render("prod", config))
    return target


def _vendor_recipe() -> str:
    """What a vendor/ is built from: the runtime requirements and the tools that build and
    slim it (a change to either makes a kept vendor/ stale)."""
    import hashlib
    digest = hashlib.sha256()
    for path in (ROOT / "requirements-runtime.txt", ROOT / "tools" / "vendor.py",
                 ROOT / "tools" / "slim.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_vendor(out: Path) -> Path:
    """vendor/ for Lambda (pip mode, from the wheels cache) unless ``out`` already holds one
    built from the same recipe."""
    stamp = out.parent / f"{out.name}.recipe"
    recipe = _vendor_recipe()
    if not (out / "rasterio").is_dir() or not stamp.exists() or stamp.read_text() != recipe:
        result = subprocess.run([sys.executable, str(ROOT / "tools" / "vendor.py"), "--mode",
                                 "pip", "--out", str(out)], capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"building vendor/ failed:\n{(result.stdout + result.stderr)[-3000:]}")
        stamp.write_text(recipe)
    return out


def account(r: Rehearsal) -> dict:
    """What the account holds: functions, layers, REST APIs, roles, notifications, mappings."""
    lam, apigw = r.client("lambda"), r.client("apigateway")
    iam, s3 = r.client("iam"), r.client("s3")
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    layers = {layer["LayerName"]: [v["Version"] for v in lam.list_layer_versions(
        LayerName=layer["LayerName"])["LayerVersions"]] for layer in lam.list_layers()["Layers"]}
    apis = apigw.get_rest_apis()["items"]
    roles = [role["RoleName"] for role in iam.list_roles()["Roles"]]
    notifications = s3.get_bucket_notification_configuration(Bucket=UPLOAD_BUCKET)
    mappings = lam.list_event_source_mappings()["EventSourceMappings"]
    plans = apigw.get_usage_plans()["items"]
    return {"functions": functions, "layers": layers, "apis": apis, "roles": roles,
            "notifications": notifications.get("LambdaFunctionConfigurations", []),
            "mappings": mappings, "usage_plans": plans}


def rest_api(r: Rehearsal, api_id: str) -> dict:
    """The REST API as API Gateway holds it: binary media types, and per route and method
    its integration."""
    apigw = r.client("apigateway")
    api = apigw.get_rest_api(restApiId=api_id)
    stage = apigw.get_stage(restApiId=api_id, stageName="api")
    routes = {}
    for resource in apigw.get_resources(restApiId=api_id, limit=500)["items"]:
        for method in resource.get("resourceMethods", {}):
            integration = apigw.get_integration(restApiId=api_id, resourceId=resource["id"],
                                                httpMethod=method)
            routes.setdefault(resource["path"], {})[method] = integration
    from moto.apigateway.models import apigateway_backends
    backend = apigateway_backends[ACCOUNT][REGION]
    return {"binaryMediaTypes": api.get("binaryMediaTypes", []), "routes": routes,
            "method_settings": stage.get("methodSettings", {}),
            "sent": getattr(backend.apis[api_id], "sent_document", None)}


def start_moto():
    """moto in server mode on 127.0.0.1 (adapted, see :func:`adapt_moto`): (server, url)."""
    from moto.server import ThreadedMotoServer
    adapt_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


#: Bytes received by the moto server (request bodies), to measure what a deploy uploads;
#: and of them, the REST API's definition (PUT /restapis/{id}: Chalice sends the whole
#: OpenAPI document on every deploy, growing with the routes).
RECEIVED = [0]
API_DEFINITION = [0]


def _count_uploads() -> None:
    from moto.moto_server import werkzeug_app

    app = werkzeug_app.DomainDispatcherApplication
    if getattr(app, "_counting", False):
        return
    call = app.__call__

    def counted(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        RECEIVED[0] += length
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "PUT" and path.startswith("/restapis/") and \
                path.count("/") == 2:
            API_DEFINITION[0] += length
        return call(self, environ, start_response)

    app.__call__ = counted
    app._counting = True


def measured_deploy(r: Rehearsal) -> dict:
    """`make deploy`'s path for the prod stage, with the bytes AWS received (request bodies)."""
    RECEIVED[0] = API_DEFINITION[0] = 0
    result = deploy.deploy("prod", r.project, env=r.env(), client=r.client("lambda"),
                           apigateway=r.client("apigateway"))
    return {**result, "received": RECEIVED[0], "api_definition": API_DEFINITION[0]}


def change(path: Path) -> None:
    """A code change: a comment appended."""
    path.write_text(path.read_text() + "\n# a code-only change\n")


def run_deployed(function: str, work: Path,
                 allowed: str = "chalicelib/demo/") -> verify_package.Report:
    """The API function as the account holds it: its zip unpacked into a task folder, its
    layers, in order, into an /opt folder, run like Lambda does (tools/verify_package.py)
    with its environment (and ``allowed`` as ALLOWED_SOURCES: the demo), sent API Gateway
    events. Proves the layers and the zip make a working function together."""
    from moto.awslambda.models import lambda_backends
    backend = lambda_backends[ACCOUNT][REGION]
    held = backend.get_function(function)
    shutil.rmtree(work, ignore_errors=True)
    task, opt = work / "task", work / "opt"
    with zipfile.ZipFile(io.BytesIO(held.code_bytes)) as archive:
        archive.extractall(task)
    for layer in held.layers:  # [{"Arn": ..., "CodeSize": ...}], in the function's order
        name, version = layer["Arn"].split(":")[-2:]
        with zipfile.ZipFile(io.BytesIO(backend.get_layer_version(name, version).code_bytes)) \
                as archive:
            archive.extractall(opt)
    variables = {**held.environment_vars, "ALLOWED_SOURCES": allowed}
    return verify_package.run_checks([task, *verify_package.layer_paths(opt)], task, variables,
                                     held.memory_size, verify_package.CHECKS,
                                     verify_package.runtime_dir(work.parent))


def run(work: Path = WORK, vendor: Path | None = None) -> dict:
    """Deploy the prod stage to moto as `make deploy` does, read the account; change app.py
    and deploy again, then chalicelib (code-only deploys), reading the account each time and
    running the API function as deployed; delete the stage as `make delete` does, read what
    is left."""
    vendor = vendor or build_vendor(work / "vendor")
    _count_uploads()
    server, endpoint = start_moto()
    try:
        r = Rehearsal(endpoint, copy_project(work / "project", vendor))
        r.client("s3").create_bucket(Bucket=UPLOAD_BUCKET)
        r.client("s3").create_bucket(Bucket=TILE_BUCKET)
        r.client("sqs").create_queue(QueueName=TILE_QUEUE)
        report = {"first": measured_deploy(r)}
        report["deployed"] = account(r)
        apis = report["deployed"]["apis"]
        report["api"] = rest_api(r, apis[0]["id"]) if apis else None
        change(r.project / "app.py")
        report["second"] = measured_deploy(r)
        report["redeployed"] = account(r)
        change(r.project / "chalicelib" / "operations" / "tiler.py")
        report["third"] = measured_deploy(r)
        report["code_changed"] = account(r)
        report["running"] = run_deployed("cogtiler-prod", work / "lambda")
        report["delete_output"] = deploy.delete("prod", r.project, env=r.env(),
                                                client=r.client("lambda"),
                                                apigateway=r.client("apigateway"))
        report["left"] = account(r)
        return report
    finally:
        server.stop()


def main() -> None:
    report = run()
    deployed, left, api = report["deployed"], report["left"], report["api"]
    print(report["first"]["output"])
    for name, function in sorted(deployed["functions"].items()):
        print(f"  {name}: {function['Runtime']}, {function['MemorySize']} MB, "
              f"{function['Timeout']} s, layers {[x['Arn'] for x in function.get('Layers', [])]}")
    print(f"  layers: {deployed['layers']}")
    print(f"  S3 notifications: {json.dumps(deployed['notifications'])}")
    print(f"  SQS mappings: {[m['FunctionArn'] for m in deployed['mappings']]}")
    if api:
        print(f"  REST API: binary media types {api['binaryMediaTypes']}, "
              f"{len(api['routes'])} resources")
    first = report["first"]
    print(f"first deploy: {first['received'] / 1e6:.2f} MB sent; "
          f"layers: {deploy._summary(first['layers'])}; each function's zip "
          f"{first['app_zip'] / 1e3:.0f} KB")
    for label in ("second", "third"):
        result = report[label]
        changed = "app.py" if label == "second" else "chalicelib"
        print(f"code-only redeploy ({changed}): {result['received'] / 1e6:.2f} MB sent; "
              f"layers: {deploy._summary(result['layers'])}")
    running = report["running"]
    print(f"the deployed API function run like Lambda: cold start "
          f"{running.cold_start * 1000:.0f} ms, failures: {running.failures or 'none'}")
    print(report["delete_output"])
    remaining = {k: list(v) if isinstance(v, dict) else v for k, v in left.items()}
    print(f"left after delete: {json.dumps(remaining, default=str)[:2000]}")


if __name__ == "__main__":
    main()
