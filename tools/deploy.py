"""Deploys that upload the dependencies only when they change.

Chalice's ``automatic_layer`` deletes and re-publishes the dependency layer on every
``chalice deploy``, so each deploy uploads vendor/ (about 40 MB) again. Here the layer is
published by us, from vendor/, only when its content hash is new:

* ``layer``: hash vendor/ (every path and byte, with the runtime and architecture); reuse the
  stage's layer version whose description carries that hash, else publish one. The result
  (ARN and hash) is recorded in ``.chalice/deployed/dependencies-<stage>.json`` beside
  Chalice's own deployment record.
* ``deploy``: ``layer``, then the real ``chalice deploy --stage`` on a copy of the project
  without vendor/, whose stage references that layer through its ``layers`` (and not
  ``automatic_layer``): the functions' zips hold only the app. Chalice's deployment record is
  kept in the project's ``.chalice/deployed/``.
  Then the stage's request limits, which Chalice cannot set: THROTTLE_RATE_LIMIT and
  THROTTLE_BURST_LIMIT on the API stage's methods, and with API_KEY_REQUIRED a usage plan for
  the stage's keys (same throttle, QUOTA_PER_DAY).
* ``delete``: the usage plan, ``chalice delete --stage`` the same way, then the stage's
  dependency layer versions.

    python tools/deploy.py deploy --stage prod     (make deploy STAGE=prod)
    python tools/deploy.py layer --stage prod      (make layer STAGE=prod)
    python tools/deploy.py delete --stage prod     (make delete STAGE=prod)
"""

import argparse
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import package  # noqa: E402
import policy  # noqa: E402
from chalicelib import settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = "python3.12"


def layer_name(config: dict, stage: str) -> str:
    return f"{config['app_name']}-{stage}-dependencies"


def content_hash(vendor: Path, arch: str) -> str:
    """sha256 over vendor/'s relative paths and bytes (sorted), the runtime and architecture."""
    digest = hashlib.sha256(f"{RUNTIME} {arch}\n".encode())
    for path in sorted(p for p in vendor.rglob("*") if p.is_file() and p.name != "README.md"):
        digest.update(str(path.relative_to(vendor)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def layer_zip(vendor: Path) -> bytes:
    """vendor/ under python/ (on sys.path in a Lambda layer), deflated as Chalice would."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(vendor.rglob("*")):
            if path.is_file() and path.name != "README.md":
                info = zipfile.ZipInfo(f"python/{path.relative_to(vendor)}", (1980, 1, 1, 0, 0, 0))
                info.external_attr = (path.stat().st_mode & 0o777) << 16
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def record_path(project: Path, stage: str) -> Path:
    return project / ".chalice" / "deployed" / f"dependencies-{stage}.json"


def publish_layer(stage: str, project: Path = ROOT, client=None) -> dict:
    """The stage's dependency layer for vendor/ as it is: reused when a version carries its
    hash, else published. Returns the record (arn, hash, published: bool, bytes uploaded)."""
    import boto3
    config = json.loads((project / ".chalice" / "config.json").read_text())
    vendor = project / "vendor"
    package.check_vendor(vendor)
    package.check_architecture(stage, config, vendor)
    arch = package.stage_architecture(stage, config)
    digest = content_hash(vendor, arch)
    name = layer_name(config, stage)
    client = client or boto3.client("lambda")
    marker = f"sha256:{digest}"
    existing = []
    for page in client.get_paginator("list_layer_versions").paginate(LayerName=name):
        existing += page["LayerVersions"]
    found = next((v for v in existing if v.get("Description", "").endswith(marker)), None)
    if found:
        record = {"arn": found["LayerVersionArn"], "hash": digest, "published": False,
                  "uploaded": 0}
    else:
        body = layer_zip(vendor)
        if len(body) > package.MAX_ZIPPED:
            raise SystemExit(f"the dependency layer is {len(body) / 1e6:.1f} MB zipped, over "
                             "the 50 MB of a direct upload")
        version = client.publish_layer_version(
            LayerName=name, Description=f"{config['app_name']} dependencies {marker}",
            Content={"ZipFile": body}, CompatibleRuntimes=[RUNTIME],
            CompatibleArchitectures=[arch])
        record = {"arn": version["LayerVersionArn"], "hash": digest, "published": True,
                  "uploaded": len(body)}
    path = record_path(project, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"arn": record["arn"], "hash": digest}, indent=2) + "\n")
    return record


def code_only_copy(stage: str, layer_arn: str, project: Path = ROOT) -> Path:
    """The project without vendor/, its stage referencing ``layer_arn`` (no automatic layer),
    with the project's Chalice deployment record for the stage."""
    copy = package.copy_project(project / "build" / "deploy" / stage, source=project)
    package.precompile(copy / "chalicelib")  # checked-hash byte-code, as `make package` ships
    config_path = copy / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    stage_config = config.setdefault("stages", {}).setdefault(stage, {})
    stage_config.pop("automatic_layer", None)
    stage_config["layers"] = [layer_arn, *[a for a in stage_config.get("layers", [])
                                           if a != layer_arn]]
    config_path.write_text(json.dumps(config, indent=2))
    deployed = project / ".chalice" / "deployed" / f"{stage}.json"
    if deployed.exists():
        (copy / ".chalice" / "deployed").mkdir(exist_ok=True)
        shutil.copy(deployed, copy / ".chalice" / "deployed" / deployed.name)
    return copy


def chalice(command: str, stage: str, copy: Path, project: Path, env=None) -> str:
    """``chalice <command> --stage`` in ``copy``; its deployment record goes back to
    ``project``."""
    result = subprocess.run([str(Path(sys.executable).parent / "chalice"), command, "--stage",
                             stage], cwd=copy, env=env, capture_output=True, text=True,
                            timeout=1800)
    output = result.stdout + result.stderr
    deployed = copy / ".chalice" / "deployed" / f"{stage}.json"
    target = project / ".chalice" / "deployed" / f"{stage}.json"
    if deployed.exists():
        target.parent.mkdir(exist_ok=True)
        shutil.copy(deployed, target)
    elif command == "delete" and target.exists():
        target.unlink()
    if result.returncode != 0:
        raise SystemExit(f"chalice {command} --stage {stage} failed:\n{output[-4000:]}")
    return output


def _rest_api(project: Path, stage: str) -> tuple[str, str] | None:
    """(rest API id, API Gateway stage) from Chalice's deployment record, if deployed."""
    path = project / ".chalice" / "deployed" / f"{stage}.json"
    if not path.exists():
        return None
    for resource in json.loads(path.read_text()).get("resources", []):
        if resource.get("resource_type") == "rest_api":
            config = json.loads((project / ".chalice" / "config.json").read_text())
            return resource["rest_api_id"], config.get("stages", {}).get(stage, {}).get(
                "api_gateway_stage", "api")
    return None


def apply_limits(stage: str, project: Path = ROOT, apigateway=None) -> dict:
    """The stage's request limits, which Chalice has no setting for: THROTTLE_RATE_LIMIT
    (requests per second) and THROTTLE_BURST_LIMIT on every method of the API's stage; with
    API_KEY_REQUIRED, a usage plan ``<app>-<stage>`` on the stage with the same throttle and
    QUOTA_PER_DAY (if set), for the operator's keys. Returns what was applied."""
    import boto3
    config = json.loads((project / ".chalice" / "config.json").read_text())
    variables = policy.stage_environment(stage, config)
    api = _rest_api(project, stage)
    if api is None:
        return {}
    api_id, api_stage = api
    apigateway = apigateway or boto3.client("apigateway")
    throttle = {}
    if variables.get("THROTTLE_RATE_LIMIT"):
        throttle["rateLimit"] = float(variables["THROTTLE_RATE_LIMIT"])
    if variables.get("THROTTLE_BURST_LIMIT"):
        throttle["burstLimit"] = int(variables["THROTTLE_BURST_LIMIT"])
    if throttle:
        apigateway.update_stage(restApiId=api_id, stageName=api_stage, patchOperations=[
            {"op": "replace", "path": f"/*/*/throttling/{key}", "value": str(value)}
            for key, value in throttle.items()])
    applied = {"throttle": throttle}
    if settings.from_environ(variables).api_key_required:  # as the app reads it
        name = f"{config['app_name']}-{stage}"
        plans = [p for p in apigateway.get_usage_plans()["items"] if p["name"] == name]
        plan = {"name": name, "description": f"keys for {name} (API_KEY_REQUIRED)",
                "apiStages": [{"apiId": api_id, "stage": api_stage}]}
        if throttle:
            plan["throttle"] = throttle
        if variables.get("QUOTA_PER_DAY"):
            plan["quota"] = {"limit": int(variables["QUOTA_PER_DAY"]), "period": "DAY"}
        for old in plans:  # one plan per stage, as configured now
            apigateway.delete_usage_plan(usagePlanId=old["id"])
        applied["usage_plan"] = apigateway.create_usage_plan(**plan)["id"]
    return applied


def remove_usage_plan(stage: str, project: Path, apigateway) -> list[str]:
    config = json.loads((project / ".chalice" / "config.json").read_text())
    name = f"{config['app_name']}-{stage}"
    removed = []
    for plan in apigateway.get_usage_plans()["items"]:
        if plan["name"] == name:
            apigateway.delete_usage_plan(usagePlanId=plan["id"])
            removed.append(plan["id"])
    return removed


def deploy(stage: str, project: Path = ROOT, env=None, client=None, apigateway=None) -> dict:
    """The dependency layer if it changed, then the app alone, then the stage's request
    limits. Returns what was uploaded and applied."""
    layer = publish_layer(stage, project, client)
    copy = code_only_copy(stage, layer["arn"], project)
    output = chalice("deploy", stage, copy, project, env)
    zips = list((copy / ".chalice" / "deployments").glob("*.zip"))
    return {"layer": layer, "output": output, "limits": apply_limits(stage, project, apigateway),
            "app_zip": max((z.stat().st_size for z in zips), default=0)}


def delete(stage: str, project: Path = ROOT, env=None, client=None, apigateway=None) -> str:
    import boto3
    apigateway = apigateway or boto3.client("apigateway")
    plans = remove_usage_plan(stage, project, apigateway)
    record = record_path(project, stage)
    arn = json.loads(record.read_text())["arn"] if record.exists() else "none"
    output = chalice("delete", stage, code_only_copy(stage, arn, project), project, env)
    config = json.loads((project / ".chalice" / "config.json").read_text())
    client = client or boto3.client("lambda")
    name = layer_name(config, stage)
    for version in client.list_layer_versions(LayerName=name)["LayerVersions"]:
        client.delete_layer_version(LayerName=name, VersionNumber=version["Version"])
        output += f"Deleting layer version: {version['LayerVersionArn']}\n"
    record.unlink(missing_ok=True)
    return output + "".join(f"Deleting usage plan: {plan}\n" for plan in plans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("layer", "deploy", "delete"))
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args()
    if args.command == "layer":
        layer = publish_layer(args.stage)
        print(f"{'published' if layer['published'] else 'unchanged'}: {layer['arn']} "
              f"({layer['uploaded'] / 1e6:.1f} MB uploaded)")
    elif args.command == "deploy":
        result = deploy(args.stage)
        print(result["output"])
        layer = result["layer"]
        print(f"dependencies: {'published' if layer['published'] else 'unchanged'} "
              f"{layer['arn']}; uploaded {layer['uploaded'] / 1e6:.1f} MB of layer and "
              f"{result['app_zip'] / 1e6:.2f} MB of app")
    else:
        print(delete(args.stage))


if __name__ == "__main__":
    main()
