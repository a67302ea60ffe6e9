"""Turning an uploaded GeoTIFF into a Cloud-Optimized GeoTIFF (the ``cogify`` function).

s3://UPLOAD_BUCKET/UPLOAD_PREFIX/a/b.tif becomes s3://COG_BUCKET/COG_PREFIX/a/b.tif, written by
GDAL's COG driver: 512 px internal tiles, overviews down to one tile, lossless DEFLATE with the
predictor that suits the data type (none for paletted data), AVERAGE overviews (NEAREST for
paletted data), nodata and mask kept. Beside it, ``a/b.report.json`` says what happened.

Rules: the upload is never modified or deleted; the same event twice does the work once (the
COG records the ETag and a hash of the key of the upload it came from); another upload's COG
is never replaced (``x.tif`` and ``x.TIFF`` both map to ``x.tif``: the second one's COG goes
beside it, as ``x.<hash of its key>.tif``); a file that is not a georeferenced GeoTIFF
gets a failure report and no retry; S3 trouble raises, so Lambda retries the event. Input and
output stream through the function's ephemeral storage (/tmp): the upload plus its COG must fit,
about 2.5 times the upload.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.enums import ColorInterp
from rasterio.errors import RasterioError
from rasterio.shutil import copy as gdal_copy

from ..core.settings import Settings
from ..sources import aws

logger = logging.getLogger("cogtiler.cogify")
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
#: Scratch space needed per byte of upload: the upload and its COG (overviews add ~1/3).
SCRATCH_FACTOR = 2.5
#: Most uncompressed pixel bytes one conversion handles (the scratch check sees only the
#: upload's size, and a small sparse TIFF can declare terabytes: GDAL would write them all).
#: GDAL's COG driver writes about 50-100 MB/s here: 8 GB is minutes, within Lambda's 15.
MAX_PIXEL_BYTES = 8 * 2**30


@dataclass
class Outcome:
    """What became of one upload (its report, beside the COG)."""

    status: str  # created | skipped | failed | ignored
    source: str
    output: str = ""
    message: str = ""
    details: dict = field(default_factory=dict)


def output_key(key: str, upload_prefix: str, cog_prefix: str) -> str:
    """``uploads/a/b.TIFF`` -> ``cogs/a/b.tif``."""
    relative = key[len(upload_prefix):] if key.startswith(upload_prefix) else key
    directory, _, name = relative.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{cog_prefix}{directory + '/' if directory else ''}{stem}.tif"


def claimed_key(cog_key: str, key: str) -> str:
    """Where the COG of upload ``key`` goes when ``cog_key`` holds another upload's COG
    (``x.tif``, ``x.TIF``, ``x.tiff`` and ``x`` all map to ``x.tif``): beside it, named by a
    hash of the upload's key, so the same upload always lands at the same place."""
    return f"{cog_key[:-len('.tif')]}.{_key_hash(key)[:12]}.tif"


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _made_from(head: dict, key: str) -> bool:
    """Whether the COG whose HEAD is ``head`` was made from upload ``key``."""
    metadata = head.get("Metadata", {})
    if "source-key-sha256" in metadata:
        return metadata["source-key-sha256"] == _key_hash(key)
    return metadata.get("source-key") == key  # COGs written before the hash was recorded


def report_key(cog_key: str) -> str:
    """``cogs/a/b.tif`` -> ``cogs/a/b.report.json``."""
    return cog_key[: -len(".tif")] + ".report.json"


def cog_options(src) -> dict:
    """Creation options for GDAL's COG driver, chosen from the data."""
    paletted = src.colorinterp[0] == ColorInterp.palette
    # YES picks the floating-point predictor (3) for floats, which libtiff has for 32 and 64
    # bits only: half floats take horizontal differencing (2), lossless on any sample size
    predictor = "NO" if paletted else "STANDARD" if src.dtypes[0] == "float16" else "YES"
    return {
        "COMPRESS": "DEFLATE", "LEVEL": "6", "PREDICTOR": predictor,
        "BLOCKSIZE": "512", "OVERVIEWS": "AUTO",
        "OVERVIEW_RESAMPLING": "NEAREST" if paletted else "AVERAGE",
        "BIGTIFF": "IF_SAFER", "NUM_THREADS": "ALL_CPUS",
    }


def convert(source_path: str, target_path: str) -> dict:
    """Write ``source_path`` (a georeferenced GeoTIFF) as a COG; returns what was made.

    Raises ``ValueError`` with a user-facing reason when the input is not usable.
    """
    try:
        with rasterio.open(source_path, driver="GTiff") as src:
            if src.crs is None or src.transform.is_identity:
                raise ValueError("the file has no georeferencing (no CRS or geotransform)")
            declared = src.width * src.height * sum(
                np.dtype(d).itemsize for d in src.dtypes)
            if declared > MAX_PIXEL_BYTES:
                raise ValueError(
                    f"the file declares {src.width}x{src.height} pixels x {src.count} bands "
                    f"({declared / 2**30:.0f} GB uncompressed), over the "
                    f"{MAX_PIXEL_BYTES / 2**30:.0f} GB one conversion may write within the "
                    "function's time; split it into tiles (gdal_retile.py) and upload those")
            options = cog_options(src)
            gdal_copy(src, target_path, driver="COG", **options)
    except (RasterioError, CPLE_BaseError) as exc:
        text = str(exc).replace(os.path.dirname(source_path), "")
        if "not recognized" in text:
            raise ValueError("the file is not a GeoTIFF") from None
        raise ValueError(f"the file could not be read (damaged?): {text[:200]}") from None
    with rasterio.open(target_path) as cog:
        return {"width": cog.width, "height": cog.height, "count": cog.count,
                "dtype": cog.dtypes[0], "blocksize": list(cog.block_shapes[0]),
                "overviews": cog.overviews(1), "compression": options["COMPRESS"],
                "bytes": os.path.getsize(target_path)}


def cogify(bucket: str, key: str, config: Settings, scratch: str | None = None) -> Outcome:
    """Handle one uploaded object. S3 errors propagate (the event is retried)."""
    source = f"s3://{bucket}/{key}"
    if bucket != config.upload_bucket or not key.startswith(config.upload_prefix):
        return Outcome("ignored", source, message="not under the configured upload prefix")
    out_bucket = config.cog_bucket or bucket
    out_key = output_key(key, config.upload_prefix, config.cog_prefix)
    if out_bucket == bucket and out_key.startswith(config.upload_prefix):
        return _log(Outcome("failed", source, message="COG_PREFIX lies under UPLOAD_PREFIX: "
                            "outputs would trigger cogify again; fix the configuration"))
    s3 = aws.client("s3")
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if aws.is_missing(exc):  # deleted since the event: nothing to do, nothing to retry
            return _log(Outcome("ignored", source, message="the upload no longer exists"))
        raise
    etag, size = head["ETag"].strip('"'), head["ContentLength"]
    existing = _head(s3, out_bucket, out_key)
    if existing is not None and not _made_from(existing, key):
        # another upload's COG: never replaced; this one goes beside it
        out_key = claimed_key(out_key, key)
        existing = _head(s3, out_bucket, out_key)
    output = f"s3://{out_bucket}/{out_key}"
    if existing is not None and existing.get("Metadata", {}).get("source-etag") == etag:
        return _log(Outcome("skipped", source, output, "already converted from this upload"))
    scratch = scratch or tempfile.gettempdir()
    free = shutil.disk_usage(scratch).free
    if size * SCRATCH_FACTOR > free:
        outcome = Outcome("failed", source, output, f"the upload ({size / 1e6:.0f} MB) needs about "
                          f"{size * SCRATCH_FACTOR / 1e6:.0f} MB of scratch space; this function "
                          f"has {free / 1e6:.0f} MB free: raise its ephemeral storage")
        return _report(s3, out_bucket, out_key, outcome)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        upload_path, cog_path = os.path.join(work, "upload"), os.path.join(work, "cog.tif")
        s3.download_file(bucket, key, upload_path)
        try:
            details = convert(upload_path, cog_path)
        except ValueError as exc:
            return _report(s3, out_bucket, out_key, Outcome("failed", source, output, str(exc)))
        s3.upload_file(cog_path, out_bucket, out_key, ExtraArgs={
            "ContentType": COG_MEDIA_TYPE,
            # S3 metadata is ASCII: the key percent-encoded (for people), and its hash
            "Metadata": {"source-etag": etag, "source-key-sha256": _key_hash(key),
                         "source-key": quote(key, safe="/")[:1024]}})
    details["seconds"] = round(time.monotonic() - started, 2)
    details["upload_bytes"] = size
    return _report(s3, out_bucket, out_key, Outcome("created", source, output, "", details))


def _head(s3, bucket: str, key: str) -> dict | None:
    """The object's HEAD, None if there is none (S3 trouble raises: the event is retried)."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if aws.is_missing(exc):
            return None
        raise


def _log(outcome: Outcome) -> Outcome:
    level = logging.WARNING if outcome.status == "failed" else logging.INFO
    logger.log(level, json.dumps({"cogify": asdict(outcome)}))
    return outcome


def _report(s3, bucket: str, cog_key: str, outcome: Outcome) -> Outcome:
    """Write ``<name>.report.json`` beside the output, and log the outcome."""
    s3.put_object(Bucket=bucket, Key=report_key(cog_key), ContentType="application/json",
                  Body=json.dumps(asdict(outcome), indent=2).encode())
    return _log(outcome)
