"""Deploys that upload only what changed.

Chalice's ``automatic_layer`` deletes and re-publishes the dependency layer on every
``chalice deploy``, so each deploy uploads vendor/ (about 40 MB) again; and Chalice sends each
function its own copy of the app's zip. Here the stage's three layers are published by us,
each only when its content hash is new: the dependencies (vendor/), chalicelib's data and
chalicelib's code (:data:`LAYERS`). The functions' zips hold app.py and Chalice's runtime.

* ``layer``: hash each layer's files (paths and bytes, with the runtime and architecture);
  reuse the version whose description carries that hash, else publish one. ARNs and hashes
  are recorded in ``.chalice/deployed/layers-<stage>.json`` beside Chalice's own record.
* ``deploy``: ``layer``, then the real ``chalice deploy --stage`` on a copy of the project
  without vendor/ and chalicelib/, whose stage lists the layers in ``layers`` (and not
  ``automatic_layer``); Chalice's deployment record is kept in the project's
  ``.chalice/deployed/``. Then the stage's request limits, which Chalice cannot set:
  THROTTLE_RATE_LIMIT and THROTTLE_BURST_LIMIT on the API stage's methods, and with
  API_KEY_REQUIRED a usage plan for the stage's keys (same throttle, QUOTA_PER_DAY). Then
  the layer versions no function uses any more are deleted.
* ``delete``: the usage plan, ``chalice delete --stage`` the same way, then the stage's
  layer versions.

    python tools/deploy.py deploy --stage prod     (make deploy STAGE=prod)
    python tools/deploy.py layer --stage prod      (make layer STAGE=prod)
    python tools/deploy.py delete --stage prod     (make delete STAGE=prod)
"""

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import package
import policy

from chalicelib.core import settings

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = "python3.12"


#: The stage's layers, in the order Lambda extracts them into /opt: the dependencies (vendor/),
#: chalicelib's data (demo, colour maps, tile matrix sets, viewer page) and chalicelib's code
#: (sources with their byte-code). Each is published only when its content is new, so a
#: deploy uploads what changed: 40 MB when vendor/ changed, kilobytes when code did.
LAYERS = ("dependencies", "assets", "code")
#: Lambda's limit of layers per function.
MAX_LAYERS = 5


@dataclass
class Layer:
    kind: str  # one of LAYERS
    name: str  # <app>-<stage>-<kind>
    files: dict[str, Path]  # path in the zip -> file
    digest: str  # sha256 of what decides the content (see stage_layers)


def layer_name(config: dict, stage: str, kind: str) -> str:
    return f"{config['app_name']}-{stage}-{kind}"


def content_hash(files: dict[str, Path], header: str) -> str:
    """sha256 over ``header`` and each file's path in the zip and bytes, in path order."""
    digest = hashlib.sha256(f"{header}\n".encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(files[name].read_bytes()).digest())
    return digest.hexdigest()


def app_dir(stage: str, project: Path = ROOT) -> Path:
    return project / "build" / "deploy" / f"{stage}-app" / "python"


def staged_app(stage: str, project: Path = ROOT) -> Path:
    """chalicelib/ with its checked-hash byte-code, under build/deploy/<stage>-app/python/
    (what the assets and code layers hold; also the import path `chalice deploy` loads the app
    with, since the deploy copy has no chalicelib/)."""
    python = app_dir(stage, project)
    shutil.rmtree(python.parent, ignore_errors=True)
    shutil.copytree(project / "chalicelib", python / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    package.precompile(python / "chalicelib")
    return python


def stage_layers(stage: str, project: Path = ROOT) -> list[Layer]:
    """The stage's layers from vendor/ and chalicelib/ as they are, files under python/ (on
    sys.path in a Lambda layer). The dependencies' and assets' hash covers every file; the
    code's covers its sources and the interpreter that compiles their byte-code (marshalled
    byte-code is not promised to be byte-identical from run to run)."""
    config = package.read_config(project)
    package.check_stage(stage, config, project)
    vendor = project / "vendor"
    header = f"{RUNTIME} {package.stage_architecture(stage, config)}"
    python = staged_app(stage, project)
    dependencies = {f"python/{p.relative_to(vendor)}": p for p in sorted(vendor.rglob("*"))
                    if p.is_file() and p.name != "README.md"}
    app = {f"python/{p.relative_to(python)}": p for p in sorted(python.rglob("*"))
           if p.is_file()}
    code = {n: p for n, p in app.items() if p.suffix in (".py", ".pyc")}
    assets = {n: p for n, p in app.items() if n not in code}
    sources = {n: p for n, p in code.items() if p.suffix == ".py"}
    unzipped = sum(p.stat().st_size for files in (dependencies, app) for p in files.values())
    if unzipped > package.MAX_UNZIPPED:
        raise SystemExit(f"the stage's layers unzip to {unzipped / 1e6:.1f} MB, over the "
                         f"{package.MAX_UNZIPPED / 1e6:.0f} MB of a function and its layers")
    return [Layer("dependencies", layer_name(config, stage, "dependencies"), dependencies,
                  content_hash(dependencies, header)),
            Layer("assets", layer_name(config, stage, "assets"), assets,
                  content_hash(assets, header)),
            Layer("code", layer_name(config, stage, "code"), code,
                  content_hash(sources, f"{header} {sys.version}"))]


def layer_zip(files: dict[str, Path]) -> bytes:
    """The files at their paths, deflated, with their permissions and a fixed date."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.external_attr = (files[name].stat().st_mode & 0o777) << 16
            archive.writestr(info, files[name].read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def record_path(project: Path, stage: str) -> Path:
    return project / ".chalice" / "deployed" / f"layers-{stage}.json"


def versions(client, name: str) -> list[dict]:
    found = []
    for page in client.get_paginator("list_layer_versions").paginate(LayerName=name):
        found += page["LayerVersions"]
    return found


def publish_layer(layer: Layer, arch: str, description: str, client) -> dict:
    """The version of ``layer`` whose description carries its hash, else a new one. Returns
    {arn, hash, published: bool, uploaded: bytes of zip sent}."""
    marker = f"sha256:{layer.digest}"
    found = next((v for v in versions(client, layer.name)
                  if v.get("Description", "").endswith(marker)), None)
    if found:
        return {"arn": found["LayerVersionArn"], "hash": layer.digest, "published": False,
                "uploaded": 0}
    body = layer_zip(layer.files)
    if len(body) > package.MAX_ZIPPED:
        raise SystemExit(f"the {layer.kind} layer is {len(body) / 1e6:.1f} MB zipped, over "
                         "the 50 MB of a direct upload")
    version = client.publish_layer_version(
        LayerName=layer.name, Description=f"{description} {layer.kind} {marker}",
        Content={"ZipFile": body}, CompatibleRuntimes=[RUNTIME], CompatibleArchitectures=[arch])
    return {"arn": version["LayerVersionArn"], "hash": layer.digest, "published": True,
            "uploaded": len(body)}


def publish_layers(stage: str, project: Path = ROOT, client=None) -> dict[str, dict]:
    """The stage's layers (:data:`LAYERS`) as vendor/ and chalicelib/ are now, each reused
    when a version carries its hash, else published; recorded in
    .chalice/deployed/layers-<stage>.json. Returns kind -> record (see publish_layer)."""
    config = package.read_config(project)
    package.check_stage_config(stage, config)
    import boto3
    client = client or boto3.client("lambda")
    arch = package.stage_architecture(stage, config)
    records = {layer.kind: publish_layer(layer, arch, config["app_name"], client)
               for layer in stage_layers(stage, project)}
    path = record_path(project, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({kind: {"arn": r["arn"], "hash": r["hash"]}
                                for kind, r in records.items()}, indent=2) + "\n")
    return records


def prune_layers(stage: str, current: list[str], project: Path, client) -> list[str]:
    """Delete the stage's layer versions that are not in ``current`` (after a deploy that put
    ``current`` on every function; Lambda keeps a deleted version for functions still using
    it). Returns the deleted ARNs."""
    config = package.read_config(project)
    deleted = []
    for kind in LAYERS:
        name = layer_name(config, stage, kind)
        for version in versions(client, name):
            if version["LayerVersionArn"] not in current:
                client.delete_layer_version(LayerName=name, VersionNumber=version["Version"])
                deleted.append(version["LayerVersionArn"])
    return deleted


def code_only_copy(stage: str, layer_arns: list[str], project: Path = ROOT) -> Path:
    """The project without vendor/ and chalicelib/ (both are in the stage's layers, listed
    first in its ``layers``; no automatic layer), with the project's Chalice deployment
    record for the stage. Chalice zips app.py and its own runtime for each function."""
    copy = package.copy_project(project / "build" / "deploy" / stage, source=project,
                                chalicelib=False)
    config_path = copy / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    stage_config = config.setdefault("stages", {}).setdefault(stage, {})
    stage_config.pop("automatic_layer", None)
    layers = [*layer_arns, *[a for a in stage_config.get("layers", []) if a not in layer_arns]]
    if len(layers) > MAX_LAYERS:
        raise SystemExit(f"the {stage} stage would have {len(layers)} layers (its own "
                         f"{len(layers) - len(layer_arns)} and cogtiler's {len(layer_arns)}); "
                         f"Lambda allows {MAX_LAYERS}")
    stage_config["layers"] = layers
    config_path.write_text(json.dumps(config, indent=2))
    deployed = project / ".chalice" / "deployed" / f"{stage}.json"
    if deployed.exists():
        (copy / ".chalice" / "deployed").mkdir(exist_ok=True)
        shutil.copy(deployed, copy / ".chalice" / "deployed" / deployed.name)
    return copy


def chalice(command: str, stage: str, copy: Path, project: Path, env=None,
            app: Path | None = None) -> str:
    """``chalice <command> --stage`` in ``copy``, importing chalicelib from ``app`` (the
    staged layer folder); its deployment record goes back to ``project``."""
    env = dict(os.environ if env is None else env)
    if app is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(app), env.get("PYTHONPATH")]))
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
            config = package.read_config(project)
            return resource["rest_api_id"], config.get("stages", {}).get(stage, {}).get(
                "api_gateway_stage", "api")
    return None


def apply_limits(stage: str, project: Path = ROOT, apigateway=None) -> dict:
    """The stage's request limits, which Chalice has no setting for: THROTTLE_RATE_LIMIT
    (requests per second) and THROTTLE_BURST_LIMIT on every method of the API's stage; with
    API_KEY_REQUIRED, a usage plan ``<app>-<stage>`` on the stage with the same throttle and
    QUOTA_PER_DAY (if set), for the operator's keys. Returns what was applied."""
    import boto3
    config = package.read_config(project)
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
    config = package.read_config(project)
    name = f"{config['app_name']}-{stage}"
    removed = []
    for plan in apigateway.get_usage_plans()["items"]:
        if plan["name"] == name:
            apigateway.delete_usage_plan(usagePlanId=plan["id"])
            removed.append(plan["id"])
    return removed


def deploy(stage: str, project: Path = ROOT, env=None, client=None, apigateway=None) -> dict:
    """The layers that changed, then the functions (app.py alone), then the stage's request
    limits; then the layer versions no function uses any more are deleted. Returns what was
    uploaded, applied and deleted."""
    package.check_stage_config(stage, package.read_config(project))
    import boto3
    client = client or boto3.client("lambda")
    layers = publish_layers(stage, project, client)
    arns = [layers[kind]["arn"] for kind in LAYERS]
    copy = code_only_copy(stage, arns, project)
    output = chalice("deploy", stage, copy, project, env,
                     app=app_dir(stage, project))
    [app_zip] = (copy / ".chalice" / "deployments").glob("*.zip")
    with zipfile.ZipFile(app_zip) as archive:
        app_files = sorted(archive.namelist())
    return {"layers": layers, "output": output,
            "limits": apply_limits(stage, project, apigateway),
            "pruned": prune_layers(stage, arns, project, client),
            "app_zip": app_zip.stat().st_size, "app_files": app_files}


def delete(stage: str, project: Path = ROOT, env=None, client=None, apigateway=None) -> str:
    package.check_stage_config(stage, package.read_config(project))  # before any path
    import boto3
    apigateway = apigateway or boto3.client("apigateway")
    client = client or boto3.client("lambda")
    plans = remove_usage_plan(stage, project, apigateway)
    output = chalice("delete", stage, code_only_copy(stage, [], project), project, env,
                     app=project)  # (Chalice loads the app to delete it too)
    for arn in prune_layers(stage, [], project, client):
        output += f"Deleting layer version: {arn}\n"
    record_path(project, stage).unlink(missing_ok=True)
    return output + "".join(f"Deleting usage plan: {plan}\n" for plan in plans)


def _summary(records: dict[str, dict]) -> str:
    return "; ".join(f"{kind} {'published' if r['published'] else 'unchanged'} "
                     f"({r['uploaded'] / 1e6:.2f} MB)" for kind, r in records.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("layer", "deploy", "delete"))
    parser.add_argument("--stage", default="prod")
    args = parser.parse_args()
    try:
        run(args.command, args.stage)
    except package.PackageError:
        raise
    except Exception as error:  # AWS unreachable, no credentials, a refused call...
        import botocore.exceptions
        if isinstance(error, (botocore.exceptions.BotoCoreError,
                              botocore.exceptions.ClientError)):
            raise SystemExit(f"AWS: {error}") from None
        raise


def run(command: str, stage: str) -> None:
    args = argparse.Namespace(command=command, stage=stage)
    if args.command == "layer":
        print(f"layers: {_summary(publish_layers(args.stage))}")
    elif args.command == "deploy":
        result = deploy(args.stage)
        print(result["output"])
        print(f"layers: {_summary(result['layers'])}; each function's zip "
              f"{result['app_zip'] / 1e6:.2f} MB")
        for arn in result["pruned"]:
            print(f"deleted unused layer version {arn}")
    else:
        print(delete(args.stage))


if __name__ == "__main__":
    main()
