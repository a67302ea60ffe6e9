"""The deploy tool checks its inputs before it builds, publishes or deletes anything: stage
names that would escape a path, stages that do not exist, broken config.json files and
settings the deployed function would refuse. Each is one line, never a traceback."""

import json
import shutil
from pathlib import Path

import deploy
import package
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path):
    """A copy of the project's .chalice/ (no vendor/ needed: nothing gets that far)."""
    copy = tmp_path / "project"
    (copy / ".chalice").mkdir(parents=True)
    shutil.copy(ROOT / ".chalice" / "config.json", copy / ".chalice" / "config.json")
    return copy


def config_of(project: Path) -> dict:
    return json.loads((project / ".chalice" / "config.json").read_text())


def write(project: Path, config) -> None:
    text = config if isinstance(config, str) else json.dumps(config)
    (project / ".chalice" / "config.json").write_text(text)


@pytest.mark.parametrize("stage", ["../../../canary", "../..", "..", "a/b", "", "x" * 300,
                                   "-rf", "prod\n", "é"])
def test_stage_names_that_could_escape_a_path_are_refused_first(project, tmp_path, stage):
    canary = tmp_path / "canary"
    canary.write_text("still here")
    inside = project / "build" / "untracked.txt"
    inside.parent.mkdir()
    inside.write_text("still here")
    for command in (deploy.delete, deploy.deploy, deploy.publish_layers):
        with pytest.raises(SystemExit) as refused:
            command(stage, project)
        assert "stage name" in str(refused.value) and "\n" not in str(refused.value)
    assert canary.read_text() == inside.read_text() == "still here"


def test_an_unknown_stage_names_the_known_ones(project):
    with pytest.raises(SystemExit, match=r"no stage 'staging'.*dev.*prod"):
        deploy.delete("staging", project)


@pytest.mark.parametrize("text, words", [
    ('{"app_name": "cogtiler", "stages": {', "not valid JSON"),
    ("[]", "JSON object"),
    ('{"app_name": "cogtiler", "stages": ["prod"]}', '"stages" must be an object'),
    ('{"app_name": "cogtiler", "stages": {"prod": {"environment_variables": null}}}',
     "environment_variables of stage 'prod'"),
    ('{"app_name": "cogtiler", "environment_variables": {"X": 1}, "stages": {"prod": {}}}',
     "object of strings"),
    ('{"app_name": "../x", "stages": {"prod": {}}}', "app_name"),
])
def test_broken_config_files_are_one_line(project, text, words):
    write(project, text)
    with pytest.raises(SystemExit) as refused:
        deploy.delete("prod", project)
    assert words in str(refused.value) and "Traceback" not in str(refused.value)


def test_a_missing_config_file_says_how_to_restore_it(project):
    (project / ".chalice" / "config.json").unlink()
    with pytest.raises(SystemExit, match="missing"):
        deploy.delete("prod", project)


@pytest.mark.parametrize("change, words", [
    ({"lambda_architecture": "sparc"}, "lambda_architecture must be x86_64 or arm64"),
    ({"environment_variables": {"THROTTLE_RATE_LIMIT": "fast"}}, "THROTTLE_RATE_LIMIT"),
    ({"environment_variables": {"THROTTLE_BURST_LIMIT": "0"}}, "above 0"),
    ({"environment_variables": {"QUOTA_PER_DAY": "lots"}}, "QUOTA_PER_DAY"),
    ({"environment_variables": {"API_KEY_REQUIRED": "maybe"}}, "API_KEY_REQUIRED"),
    ({"environment_variables": {"MAX_IMAGE_SIZE": "big"}}, "MAX_IMAGE_SIZE"),
])
def test_settings_the_function_would_refuse_are_refused_before_publishing(project, change,
                                                                         words):
    config = config_of(project)
    stage = config["stages"]["prod"]
    for key, value in change.items():
        if isinstance(value, dict):
            stage.setdefault(key, {}).update(value)
        else:
            stage[key] = value
    write(project, config)
    with pytest.raises(SystemExit) as refused:
        package.check_stage_config("prod", package.read_config(project))
    assert words in str(refused.value)


def test_the_real_stages_pass(project):
    for stage in config_of(project)["stages"]:
        package.check_stage_config(stage, package.read_config(project))


def test_aws_unreachable_is_one_line(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_MAX_ATTEMPTS": "1",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x"}
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "deploy.py"), "delete",
                             "--stage", "prod"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert result.stderr.startswith("AWS:") and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_registered_searches_on_s3_are_read_and_written_only_there():
    import policy
    document = policy.policy_for([], {"SEARCHES_PREFIX": "s3://kept/searches/"})
    statement = {s["Sid"]: s for s in document["Statement"]}["RegisteredSearches"]
    assert statement["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert statement["Resource"] == ["arn:aws:s3:::kept/searches/*"]
    local = policy.policy_for([], {"SEARCHES_PREFIX": "build/searches/"})
    assert "RegisteredSearches" not in {s["Sid"] for s in local["Statement"]}
