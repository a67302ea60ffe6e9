"""The Lambda artifact: vendor/ built without Docker, packaged offline, run like Lambda.

The build happens once for this module, in a scratch copy of the project under build/, so a
developer's own vendor/ and package are never touched.
"""

import json
import shutil
import subprocess
import sys
import zipfile

import package as packaging
import policy
import pytest
import slim
import verify_package

import vendor
from tests.support import ROOT

pytestmark = pytest.mark.package

SCRATCH = ROOT / "build" / "test-package"


@pytest.fixture(scope="module")
def project():
    """A copy of the project with a freshly built vendor/ (pip mode, no Docker)."""
    shutil.rmtree(SCRATCH, ignore_errors=True)
    copy = packaging.copy_project(SCRATCH / "project")
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "vendor.py"), "--mode", "pip",
                             "--out", str(copy / "vendor")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "building for python3.12 on x86_64 with pip" in result.stdout
    return copy


PIPELINE_STAGE = {"automatic_layer": True, "autogen_policy": False,
                  "iam_policy_file": "policy-pipeline.json",
                  "environment_variables": {"ALLOWED_SOURCES": "s3://my-data/cogs/",
                                            "UPLOAD_BUCKET": "my-data", "TILE_QUEUE": "my-tiles",
                                            "TILE_BUCKET": "my-tile-cache"}}


@pytest.fixture(scope="module")
def packages(project):
    config_path = project / ".chalice" / "config.json"  # a third stage that deploys cogify
    config = json.loads(config_path.read_text())
    config["stages"]["pipeline"] = PIPELINE_STAGE
    config_path.write_text(json.dumps(config))
    (project / ".chalice" / "policy-pipeline.json").write_text(policy.render("pipeline", config))
    return {stage: (SCRATCH / stage, packaging.package(stage, SCRATCH / stage, project=project))
            for stage in ("dev", "prod", "pipeline")}


def test_vendor_is_slim_and_for_lambda(project):
    root = project / "vendor"
    vendor.check_architecture(root, "x86_64")
    unzipped, zipped = slim.size_report(str(root))
    assert unzipped < 250e6 and zipped < 45e6
    names = {p.name for p in root.rglob("*")}
    assert "tests" not in names and "__pycache__" not in names and "boto3" not in names
    assert not list(root.rglob("*.pyx")) and not list(root.rglob("*.h"))
    assert (root / "rasterio" / "proj_data" / "proj.db").exists()  # needed at runtime


def test_packages_are_offline_checked_and_within_limits(packages):
    dev_dir, dev = packages["dev"]
    prod_dir, prod = packages["prod"]
    assert [r.name for r in dev] == ["deployment.zip"]
    assert [r.name for r in prod] == ["deployment.zip", "layer-deployment.zip"]
    code, layer = prod
    assert code.zipped < 1e6 < layer.zipped  # a code-only change uploads kilobytes
    for report in dev + prod:
        assert report.zipped < 50e6
    with zipfile.ZipFile(dev_dir / "deployment.zip") as archive:
        names = archive.namelist()
    assert len(names) == len(set(names))
    assert "app.py" in names and "chalicelib/demo/demo.tif" in names
    pycs = [n for n in names if n.startswith("chalicelib/") and n.endswith(".pyc")]
    assert "chalicelib/operations/__pycache__/tiler.cpython-312.pyc" in pycs
    with zipfile.ZipFile(dev_dir / "deployment.zip") as archive:
        for name in pycs:  # checked-hash: validated against the source, never run stale
            flags = int.from_bytes(archive.read(name)[4:8], "little")
            assert flags == 0b11, name
    template = json.loads((prod_dir / "sam.json").read_text())
    props = template["Resources"]["APIHandler"]["Properties"]
    assert props["Runtime"] == "python3.12" and props["Timeout"] <= 29
    assert props["Environment"]["Variables"]["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
    assert props["Environment"]["Variables"]["ALLOWED_SOURCES"] == ""


def test_a_stage_with_cogify_is_packaged_for_terraform(packages):
    package_dir, reports = packages["pipeline"]
    assert (package_dir / "chalice.tf.json").exists() and not (package_dir / "sam.json").exists()
    template = json.loads((package_dir / "chalice.tf.json").read_text())
    found = packaging.functions(template)
    assert set(found) == {"api_handler", "seed", "cogify", "render"}
    assert {f["runtime"] for f in found.values()} == {"python3.12"}
    assert found["cogify"]["memory"] == 3008 and found["cogify"]["timeout"] == 900
    assert found["render"]["timeout"] == 120 and found["api_handler"]["timeout"] <= 29
    notification = template["resource"]["aws_s3_bucket_notification"]
    assert "my-data" in json.dumps(notification) and "uploads/" in json.dumps(notification)
    assert [r.name for r in reports] == ["deployment.zip", "layer-deployment.zip"]


@pytest.mark.parametrize("stage", ["dev", "prod", "pipeline"])
def test_the_package_runs_like_lambda(packages, stage):
    package_dir, _ = packages[stage]
    report = verify_package.verify(package_dir, SCRATCH / f"verify-{stage}",
                                   allowed="chalicelib/demo/")
    assert report.failures == []
    assert 0 < report.init < report.cold_start
    print(f"\n{stage}: cold start {report.cold_start * 1000:.0f} ms "
          f"(init {report.init * 1000:.0f} ms)")


def test_prod_refuses_the_demo_unless_configured(packages):
    package_dir, _ = packages["prod"]
    check = verify_package.Check("demo in prod", verify_package.api_event(
        "/cog/info", {"url": ["chalicelib/demo/demo.tif"]}), 403, "application/json")
    report = verify_package.verify(package_dir, SCRATCH / "verify-prod-default", allowed=None,
                                   checks=[check])
    assert report.failures == []


# ---- the checks catch what Chalice lets through ------------------------------------------

def test_a_left_out_dependency_fails_the_package():
    from chalice.constants import MISSING_DEPENDENCIES_TEMPLATE
    text = MISSING_DEPENDENCIES_TEMPLATE % "rasterio==1.4.4"
    with pytest.raises(packaging.PackageError, match="left dependencies out"):
        packaging.check_output(text)
    packaging.check_output("Creating deployment package.\n")


def test_the_wrong_interpreter_fails_the_package(tmp_path):
    with pytest.raises(packaging.PackageError, match="3.12"):
        packaging.check_interpreter((3, 11, 7))
    template = tmp_path / "sam.json"
    template.write_text(json.dumps({"Resources": {"APIHandler": {
        "Type": "AWS::Serverless::Function", "Properties": {"Runtime": "python3.11"}}}}))
    with pytest.raises(packaging.PackageError, match="python3.12"):
        packaging.inspect_template(template)


def test_duplicate_zip_entries_fail_the_package(tmp_path):
    path = tmp_path / "deployment.zip"
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("click/__init__.py", "a")
        archive.writestr("click/__init__.py", "b")
    with pytest.raises(packaging.PackageError, match="duplicate"):
        packaging.inspect_zip(path)


def test_oversized_packages_fail():
    big = packaging.ZipReport("deployment.zip", 51_000_000, 200_000_000, 10)
    with pytest.raises(packaging.PackageError, match="50 MB"):
        packaging.check_sizes([big])
    layered = [packaging.ZipReport("deployment.zip", 1, 10_000_000, 1),
               packaging.ZipReport("layer-deployment.zip", 49_000_000, 245_000_000, 1)]
    with pytest.raises(packaging.PackageError, match="250 MB"):
        packaging.check_sizes(layered)


def test_libraries_for_another_architecture_are_caught(tmp_path):
    elf_aarch64 = b"\x7fELF\x02\x01\x01" + b"\x00" * 11 + (183).to_bytes(2, "little")
    (tmp_path / "lib.so").write_bytes(elf_aarch64 + b"\x00" * 100)
    with pytest.raises(SystemExit, match="x86_64"):
        vendor.check_architecture(tmp_path, "x86_64")
    vendor.check_architecture(tmp_path, "arm64")
    (tmp_path / "lib.so").unlink()
    (tmp_path / "_x.cpython-311-x86_64-linux-gnu.so").write_bytes(
        elf_aarch64[:18] + (62).to_bytes(2, "little") + b"\x00" * 100)
    with pytest.raises(SystemExit, match="3.12"):
        vendor.check_architecture(tmp_path, "x86_64")


def test_vendor_limits():
    with pytest.raises(SystemExit, match="250 MB"):
        vendor.check_limits(251_000_000, 40_000_000)
    with pytest.raises(SystemExit, match="50 MB"):
        vendor.check_limits(200_000_000, 51_000_000)


# ---- the IAM policy ----------------------------------------------------------------------

def test_committed_prod_policy_matches_its_allow_list():
    assert (ROOT / ".chalice" / "policy-prod.json").read_text() == policy.render("prod")


def test_policy_grants_reads_only_under_allowed_prefixes():
    document = policy.policy_for(["s3://bucket/cogs", "s3://other/", "https://x.org/"])
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["ReadAllowedObjects"]["Action"] == ["s3:GetObject"]
    assert statements["ReadAllowedObjects"]["Resource"] == [
        "arn:aws:s3:::bucket/cogs", "arn:aws:s3:::bucket/cogs/*", "arn:aws:s3:::other/*"]
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert actions == {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                       "s3:GetObject", "s3:ListBucket"}
    assert policy.policy_for([])["Statement"][0]["Sid"] == "WriteLogs"
    assert len(policy.policy_for([])["Statement"]) == 1


def test_prod_uses_its_own_policy_file():
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    prod = config["stages"]["prod"]
    assert prod["autogen_policy"] is False and prod["iam_policy_file"] == "policy-prod.json"
    assert config["lambda_timeout"] <= 29  # the API handler: within API Gateway's 29 s
    assert all("lambda_timeout" not in stage for stage in config["stages"].values())


def test_dockerfile_builds_on_the_lambda_python_312_image_with_the_same_slimming():
    text = (ROOT / "tools" / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12" in text
    assert "slim.py" in text and "requirements-runtime.txt" in text
    assert "FROM scratch" in text  # only the slimmed tree is exported


def test_the_package_serves_a_catalog_search(packages, stac_api, tmp_path):
    """The packaged function under awslambdaric, pointed at a real STAC API: a collection's
    tile (API Gateway's event for /collections/{collection_id}/tiles/...) and a registered
    search's TileJSON."""
    import mercantile
    package_dir, _ = packages["dev"]
    boxes = [i["bbox"] for i in stac_api.items]
    lon = (max(b[0] for b in boxes) + min(b[2] for b in boxes)) / 2
    lat = (max(b[1] for b in boxes) + min(b[3] for b in boxes)) / 2
    z, x, y = (lambda t: (t.z, t.x, t.y))(mercantile.tile(lon, lat, 10))
    resource = "/collections/{collection_id}/tiles/{tileMatrixSetId}/{z}/{x}/{y}"
    tile = verify_package.api_event(
        f"/collections/scenes/tiles/WebMercatorQuad/{z}/{x}/{y}.png",
        {"assets": ["data"], "rescale": ["0,9000"]}, resource=resource,
        path_parameters={"collection_id": "scenes", "tileMatrixSetId": "WebMercatorQuad",
                         "z": str(z), "x": str(x), "y": f"{y}.png"})
    point = verify_package.api_event(
        f"/collections/scenes/point/{lon},{lat}", {"assets": ["data"]},
        resource="/collections/{collection_id}/point/{lonlat}",
        path_parameters={"collection_id": "scenes", "lonlat": f"{lon},{lat}"})
    checks = [verify_package.Check("collection tile", tile, 200, "image/png", (256, 256)),
              verify_package.Check("collection point", point, 200, "application/json")]
    report = verify_package.verify(package_dir, SCRATCH / "verify-catalog", checks=checks,
                                   env=stac_api.env(tmp_path / "searches"))
    assert report.failures == []
