"""Output formats, one entry each: a new format is one line here plus its encoder.

Everything else reads this table: URL parsing (extensions and aliases), the routes
(``/cog/preview.{ext}``), rendering (raw values or 8-bit), what happens to the mask, the
OpenAPI document (enums and response media types) and the README.
"""

from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import BadRequest
from . import encode


@dataclass(frozen=True)
class ImageFormat:
    """An output format.

    ``raw``: keeps the data's own values and type unless ``rescale`` or a colormap asks for
    colours (GeoTIFF, NPY); otherwise the pixels must be 8-bit colours.
    ``alpha``: what becomes of the mask: ``"always"`` kept (as an alpha band or mask),
    ``"when_masked"`` kept only when some pixel is masked, ``"never"``.
    ``paletted``: the encoder takes pixels coloured by a lookup table as the table's indices
    and the table (``Options.palette``), rather than as RGB.
    """

    name: str
    extension: str
    media_type: str
    encoder: Callable
    description: str
    aliases: tuple[str, ...] = ()
    raw: bool = False
    alpha: str = "when_masked"
    paletted: bool = False
    #: For a raw format that cannot hold every type: the types it holds.
    dtypes: tuple[str, ...] | None = None


FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("png", "png", "image/png", encode.png, "PNG, lossless, with alpha",
                paletted=True),
    ImageFormat("jpeg", "jpg", "image/jpeg", encode.jpeg, "JPEG, lossy, no alpha",
                aliases=("jpg",), alpha="never"),
    ImageFormat("webp", "webp", "image/webp", encode.webp, "WEBP, lossy, with alpha"),
    ImageFormat("tif", "tif", "image/tiff; application=geotiff", encode.geotiff,
                "GeoTIFF of the raw values, georeferenced, the mask as an internal mask",
                aliases=("tiff", "gtiff"), raw=True, alpha="always"),
    ImageFormat("npy", "npy", "application/x-binary", encode.npy,
                "NumPy array of the raw values, the mask appended as the last band",
                raw=True, alpha="always"),
    ImageFormat("pngraw", "pngraw", "image/png", encode.png,
                "PNG of the raw values (8 or 16 bits, as titiler), with alpha",
                raw=True, alpha="always", dtypes=("uint8", "uint16")),
    ImageFormat("jp2", "jp2", "image/jp2", encode.jp2,
                "JPEG 2000 (GDAL's OpenJPEG driver) of the values (8 or 16 bits), with alpha",
                raw=True, alpha="always", dtypes=("uint8", "int16", "uint16")),
)

_BY_NAME = {name: fmt for fmt in FORMATS for name in (fmt.name, fmt.extension, *fmt.aliases)}

#: The format of tiles when a document (WMTS) or a pure function names none.
PNG = _BY_NAME["png"]
#: Every accepted spelling, for URL patterns and the OpenAPI enums.
NAMES: tuple[str, ...] = tuple(_BY_NAME)
#: One URL extension per format (``/cog/preview.{ext}``).
EXTENSIONS: tuple[str, ...] = tuple(dict.fromkeys(f.extension for f in FORMATS))
MEDIA_TYPES: tuple[str, ...] = tuple(f.media_type for f in FORMATS)


def get(name: str | None) -> ImageFormat | None:
    """The format called ``name`` (any spelling, any case); None for no name."""
    if not name:
        return None
    fmt = _BY_NAME.get(name.lower())
    if fmt is None:
        raise BadRequest(f"unknown format '{name[:20]}'; use one of: {', '.join(EXTENSIONS)}")
    return fmt


def automatic(fully_opaque: bool) -> ImageFormat:
    """The format when none is asked for: JPEG if nothing is masked, else PNG (as titiler)."""
    return _BY_NAME["jpeg" if fully_opaque else "png"]
