"""One image's way from the source to bytes: read, process, render, encode, each once.

:func:`draw` is the path every image takes (tiles, previews, bbox parts, the tile cache):

1. **read**: the reader returns the pixels with what rendering needs from the source
   attached (the palette; the dataset statistics, asked for only when the style stretches
   by them: ``pixels.render.stretches``), holding each dataset once;
2. **process**: :func:`post_process`, between reading and rendering: an algorithm
   (``pixels.algorithms``: hillshade, terrain RGB...) works on the pixels;
3. **render**: the style (rescale, colormap, alpha; ``pixels.render.apply_style``);
4. **encode**: the format's encoder, checked against the response limit (an uncompressed
   one, NPY, before reading: the request's budget knows the limit, ``core.budget``).
"""

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..core import budget
from ..core.errors import BadRequest, TooLarge
from ..core.records import EncodedImage, ImageData, Style
from ..pixels import formats, render
from ..pixels.algorithms import Algorithm
from ..pixels.encode import Options
from ..pixels.formats import ImageFormat

#: Lambda returns at most 6 MB, after base64 (4/3 larger) and headers.
MAX_BODY_BYTES = 4_400_000


def raw(fmt: ImageFormat | None) -> bool:
    """Whether ``fmt`` keeps the raw values (GeoTIFF, NPY) unless the style colours them."""
    return fmt is not None and fmt.raw


def post_process(image: ImageData, algorithm: Algorithm | None = None) -> ImageData:
    """The step between reading and rendering: ``algorithm`` on the pixels, if any."""
    return image if algorithm is None else algorithm(image)


def encode_image(image: ImageData, style: Style, fmt: ImageFormat | None) -> EncodedImage:
    """Style and encode ``image`` (``fmt`` None: JPEG if nothing is masked, else PNG)."""
    styled = render.apply_style(image, style, raw_format=raw(fmt))
    if fmt is None:
        fmt = formats.automatic(styled.fully_opaque)
    if not fmt.raw and styled.dtype != np.uint8:
        raise BadRequest(f"{fmt.name.upper()} holds 8-bit data; add rescale=min,max or use "
                         "a raw format (tif, npy)")
    if fmt.dtypes is not None and styled.dtype.name not in fmt.dtypes:
        raise BadRequest(f"{fmt.name} holds {' or '.join(fmt.dtypes)} values, these are "
                         f"{styled.dtype}: add rescale=min,max or use tif or npy")
    alpha = None
    if style.return_mask and fmt.alpha != "never" and not (
            fmt.alpha == "when_masked" and styled.fully_opaque):
        alpha = styled.alpha
    options = Options(zlevel=style.png_zlevel, quality=style.quality, bounds=image.bounds,
                      crs=image.crs)
    if fmt.paletted and styled.paletted is not None:
        body = fmt.encoder(styled.paletted.indices[None], alpha,
                           replace(options, palette=styled.paletted.table))
    else:
        body = fmt.encoder(styled.data, alpha, options)
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"the image is {len(body) / 1e6:.1f} MB, above the response limit "
                       f"({MAX_BODY_BYTES / 1e6:.1f} MB: Lambda's 6 MB once base64-encoded): "
                       "ask for fewer pixels (max_size, width, height) or jpg/webp")
    return EncodedImage(body, fmt.media_type, fmt.extension, empty=not styled.visible)


def draw(read: Callable[[bool], ImageData], style: Style, fmt: ImageFormat | None,
         algorithm: Algorithm | None = None, crop: int = 0) -> EncodedImage:
    """``read(statistics)`` the pixels, then process (``algorithm``), crop ``crop`` pixels
    off each side (a padding the read added), render and encode them. ``read`` is told
    whether the style needs the dataset statistics attached."""
    if fmt is not None and fmt.name == "npy" and algorithm is None:
        # uncompressed: an answer too large to return is refused before reading
        budget.current().limit_output(MAX_BODY_BYTES, keeps_dtype=style.colormap is None and
                                      style.rescale is None and style.color_formula is None)
    # an algorithm's output is stretched by the input's statistics only if on its scale
    statistics = render.stretches(style, raw(fmt)) and (
        algorithm is None or algorithm.keeps_scale)
    image = post_process(read(statistics), algorithm).cropped(crop)
    return encode_image(image, style, fmt)
