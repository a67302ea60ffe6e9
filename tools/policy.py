"""The least-privilege IAM policy of a stage, derived from its configuration.

The functions may write their logs and read (GetObject) only under the s3:// prefixes of
ALLOWED_SOURCES; ListBucket, limited to those prefixes, lets S3 answer 404 rather than 403 for
a missing key. https:// and local sources need no IAM permission. When the stage configures
the pure functions: cogify reads UPLOAD_PREFIX and writes COG_PREFIX, seed sends to and render
receives from TILE_QUEUE, render writes TILE_PREFIX, mosaic writes MOSAIC_PREFIX (and lists the
allowed prefixes it is given: the ListBucket above); the API reads and writes registered
searches under SEARCHES_PREFIX.

    python tools/policy.py --stage prod            # writes .chalice/policy-prod.json
    python tools/policy.py --stage prod --check    # fails if the file is out of date
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / ".chalice" / "config.json"


def stage_environment(stage: str, config: dict | None = None) -> dict:
    config = config or json.loads(CONFIG.read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return env


def allowed_sources(stage: str, config: dict | None = None) -> list[str]:
    env = stage_environment(stage, config)
    return [p.strip() for p in env.get("ALLOWED_SOURCES", "").split(",") if p.strip()]


def _patterns(prefix: str) -> list[str]:
    """Object patterns for an allow-list prefix, with its directory meaning: ``cogs`` and
    ``cogs/`` both allow ``cogs/...`` but not ``cogs-private/...``."""
    if prefix == "" or prefix.endswith("/"):
        return [f"{prefix}*"]
    return [prefix, f"{prefix}/*"]


def policy_for(sources: list[str], env: dict | None = None) -> dict:
    statements = [{
        "Sid": "WriteLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "arn:aws:logs:*:*:*",
    }]
    prefixes: dict[str, list[str]] = {}
    for source in sources:
        if not source.startswith("s3://"):
            continue
        bucket, _, prefix = source[len("s3://"):].partition("/")
        prefixes.setdefault(bucket, []).append(prefix)
    if prefixes:
        statements.append({
            "Sid": "ReadAllowedObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/{pattern}"
                         for bucket, items in sorted(prefixes.items()) for prefix in items
                         for pattern in _patterns(prefix)],
        })
        for index, (bucket, items) in enumerate(sorted(prefixes.items())):
            statements.append({
                "Sid": f"ListAllowedPrefixes{index}",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [pattern for p in items
                                                            for pattern in _patterns(p)]}},
            })
    statements += _pipeline_statements(env or {})
    return {"Version": "2012-10-17", "Statement": statements}


def _pipeline_statements(env: dict) -> list[dict]:
    statements = []
    upload_bucket = env.get("UPLOAD_BUCKET", "")
    if upload_bucket:
        upload_prefix = env.get("UPLOAD_PREFIX", "uploads/")
        cog_bucket = env.get("COG_BUCKET") or upload_bucket
        cog_prefix = env.get("COG_PREFIX", "cogs/")
        statements += [
            {"Sid": "CogifyReadUploads", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": [f"arn:aws:s3:::{upload_bucket}/{p}" for p in _patterns(upload_prefix)]},
            {"Sid": "CogifyWriteCogs", "Effect": "Allow",
             "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": [f"arn:aws:s3:::{cog_bucket}/{p}" for p in _patterns(cog_prefix)]},
            {"Sid": "CogifyListCogs", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": f"arn:aws:s3:::{cog_bucket}",
             "Condition": {"StringLike": {"s3:prefix": _patterns(cog_prefix)}}},
        ]
    mosaics = env.get("MOSAIC_PREFIX", "")
    if mosaics.startswith("s3://"):
        bucket, _, prefix = mosaics[len("s3://"):].partition("/")
        statements.append({
            "Sid": "MosaicWriteDocuments", "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/{p}" for p in _patterns(prefix)]})
    kept = env.get("SEARCHES_PREFIX", "")
    if kept.startswith("s3://"):  # POST /searches/register writes, the tile routes read
        bucket, _, prefix = kept[len("s3://"):].partition("/")
        statements.append({
            "Sid": "RegisteredSearches", "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{bucket}/{p}" for p in _patterns(prefix)]})
    queue = env.get("TILE_QUEUE", "")
    if queue:
        statements.append({
            "Sid": "TileQueue", "Effect": "Allow",
            "Action": ["sqs:GetQueueUrl", "sqs:SendMessage", "sqs:ReceiveMessage",
                       "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": f"arn:aws:sqs:*:*:{queue}"})
    tile_bucket = env.get("TILE_BUCKET", "")
    if tile_bucket:
        prefix = env.get("TILE_PREFIX", "tiles").strip("/")
        statements.append({
            "Sid": "RenderWriteTiles", "Effect": "Allow", "Action": ["s3:PutObject"],
            "Resource": f"arn:aws:s3:::{tile_bucket}/{prefix + '/' if prefix else ''}*"})
    return statements


def policy_file(stage: str) -> Path:
    return ROOT / ".chalice" / f"policy-{stage}.json"


def render(stage: str, config: dict | None = None) -> str:
    document = policy_for(allowed_sources(stage, config), stage_environment(stage, config))
    return json.dumps(document, indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    path = policy_file(args.stage)
    wanted = render(args.stage)
    if args.check:
        if not path.exists() or path.read_text() != wanted:
            sys.exit(f"{path.relative_to(ROOT)} does not match the {args.stage} stage's "
                     f"ALLOWED_SOURCES: run `make policy STAGE={args.stage}`")
        return
    path.write_text(wanted)
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
