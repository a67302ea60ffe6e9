"""AWS clients for the pure functions (cogify, seed, render), created once per container.

boto3 comes with the Lambda runtime (it is not in vendor/); it is imported here, on first use,
so the tile path never pays for it. Endpoints follow boto3's own settings (AWS_ENDPOINT_URL...),
which is how the tests reach moto's S3 and SQS on 127.0.0.1.
"""

from functools import cache


@cache
def client(service: str):
    """The boto3 client of ``service`` (one per container)."""
    import boto3
    return boto3.session.Session().client(service)


def is_missing(error) -> bool:
    """Whether a botocore ClientError says the object or bucket does not exist."""
    code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")
