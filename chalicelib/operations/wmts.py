"""OGC WMTS 1.0.0 GetCapabilities (RESTful): how GIS desktops (QGIS, ArcGIS) and GDAL's WMTS
driver find the tiles of one raster.

One layer (the raster, with the request's render parameters carried into its ResourceURL
template), one tile matrix set (the one in the URL) limited to the data's zoom levels, and
TileMatrixSetLimits of the tiles that touch the data. WMTS gives coordinates in the CRS's own
axis order (latitude first for EPSG:4326), unlike the rest of this API.
"""

from html import escape as _html_escape

from ..core.errors import BadRequest
from ..core.records import Selection, Style, TilesetOptions
from ..grids.tilematrixsets import TileMatrixSet
from ..pixels import formats
from ..pixels.algorithms import Algorithm
from ..readers.protocol import Reader
from .tiler import check_tiles_render, tile_url_template, zooms


def escape(text: str) -> str:
    """XML text and attribute escaping (``html.escape`` is the same and imports faster than
    ``xml.sax.saxutils``, which pulls in ``urllib.request``)."""
    return _html_escape(text, quote=True)


def quoteattr(text: str) -> str:
    """``text`` as a quoted XML attribute value."""
    return f'"{escape(text)}"'


def _number(value) -> str:
    return repr(float(value))  # shortest exact form, also for numpy scalars


def _corner(tms: TileMatrixSet, x: float, y: float) -> str:
    """A point in the CRS's axis order, as WMTS wants it."""
    first, second = (x, y) if tms.x_first else (y, x)
    return f"{_number(first)} {_number(second)}"


def _matrix_xml(tms: TileMatrixSet, z: int, width: int, height: int) -> str:
    m = tms.matrix(z)
    factor = width / m.tile_width  # larger tiles (@2x, tilesize) of the same extent
    left = m.origin[0]
    top = m.origin[1] if m.top_left else m.origin[1] + m.matrix_height * m.cell_size * \
        m.tile_height
    return (f"<TileMatrix><ows:Identifier>{z}</ows:Identifier>"
            f"<ScaleDenominator>{_number(m.scale_denominator / factor)}</ScaleDenominator>"
            f"<TopLeftCorner>{_corner(tms, left, top)}</TopLeftCorner>"
            f"<TileWidth>{width}</TileWidth><TileHeight>{height}</TileHeight>"
            f"<MatrixWidth>{m.matrix_width}</MatrixWidth>"
            f"<MatrixHeight>{m.matrix_height}</MatrixHeight></TileMatrix>")


def capabilities(source: Reader, tms: TileMatrixSet, options: TilesetOptions,
                 passthrough: list[tuple[str, str]], base_url: str, self_url: str,
                 selection: Selection | None = None, style: Style | None = None,
                 algorithm: Algorithm | None = None) -> str:
    """The capabilities document (found at ``self_url``). The tiles it lists are drawn
    with ``selection``, ``style`` and ``algorithm``, which are checked against the source
    first: a layer whose every tile would fail (a band the file lacks) is refused now,
    with the tiles' message, instead of showing blank in QGIS or GDAL."""
    if tms.variable:
        raise BadRequest(f"{tms.id} has rows of merged tiles (variable matrix widths), which "
                         "WMTS 1.0 cannot describe; use another tile matrix set")
    fmt = options.tile_format or formats.PNG
    minzoom, maxzoom = zooms(source, tms, options.minzoom, options.maxzoom)
    found = {z: source.tile_limits(tms, z) for z in range(minzoom, maxzoom + 1)}
    boxes = source.footprint(tms)
    limits = {z: r for z, r in found.items() if r is not None}
    if not limits:
        raise BadRequest(f"the data has no tiles in {tms.id} between zoom {minzoom} and "
                         f"{maxzoom}")
    check_tiles_render(source, tms, max(limits), selection or Selection(), style or Style(),
                       fmt, algorithm)
    west, south, east, north = source.geographic_bounds
    if west > east:  # crosses 180 degrees: WGS84BoundingBox spans the world instead
        west, east = -180.0, 180.0
    left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
    template = tile_url_template(base_url, source.kind, tms, options.tile_scale, fmt,
                                 passthrough,
                                 ("{TileMatrix}", "{TileCol}", "{TileRow}"))
    capabilities_url = self_url
    first = tms.matrix(min(limits))
    width = (options.tilesize or first.tile_width) * options.tile_scale
    height = (options.tilesize or first.tile_height) * options.tile_scale
    limit_xml = "".join(
        f"<TileMatrixLimits><TileMatrix>{z}</TileMatrix><MinTileRow>{r[1]}</MinTileRow>"
        f"<MaxTileRow>{r[3]}</MaxTileRow><MinTileCol>{r[0]}</MinTileCol>"
        f"<MaxTileCol>{r[2]}</MaxTileCol></TileMatrixLimits>" for z, r in limits.items())
    matrices = "".join(_matrix_xml(tms, z, width, height) for z in limits)
    title = escape(source.name)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1"
 xmlns:xlink="http://www.w3.org/1999/xlink" version="1.0.0">
<ows:ServiceIdentification><ows:Title>cogtiler: {title}</ows:Title>
<ows:ServiceType>OGC WMTS</ows:ServiceType><ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion>
</ows:ServiceIdentification>
<ows:OperationsMetadata>
{_operation("GetCapabilities", capabilities_url)}
{_operation("GetTile", f"{base_url}/{source.kind}/tiles/")}
</ows:OperationsMetadata>
<Contents>
<Layer>
<ows:Title>{title}</ows:Title><ows:Identifier>default</ows:Identifier>
{_box("ows:WGS84BoundingBox", "urn:ogc:def:crs:OGC:2:84", f"{_number(west)} {_number(south)}",
      f"{_number(east)} {_number(north)}")}
{_box("ows:BoundingBox", tms.crs_urn, _corner(tms, left, bottom), _corner(tms, right, top))}
<Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style>
<Format>{escape(fmt.media_type)}</Format>
<TileMatrixSetLink><TileMatrixSet>{escape(tms.id)}</TileMatrixSet>
<TileMatrixSetLimits>{limit_xml}</TileMatrixSetLimits></TileMatrixSetLink>
<ResourceURL format={quoteattr(fmt.media_type)} resourceType="tile"
 template={quoteattr(template)}/>
</Layer>
<TileMatrixSet><ows:Title>{escape(tms.title)}</ows:Title>
<ows:Identifier>{escape(tms.id)}</ows:Identifier>
<ows:SupportedCRS>{escape(tms.crs_urn)}</ows:SupportedCRS>{matrices}</TileMatrixSet>
</Contents>
<ServiceMetadataURL xlink:href={quoteattr(capabilities_url)}/>
</Capabilities>
"""


def _operation(name: str, href: str) -> str:
    return (f'<ows:Operation name="{name}"><ows:DCP><ows:HTTP><ows:Get xlink:href='
            f'{quoteattr(href)}><ows:Constraint name="GetEncoding"><ows:AllowedValues>'
            "<ows:Value>RESTful</ows:Value></ows:AllowedValues></ows:Constraint></ows:Get>"
            "</ows:HTTP></ows:DCP></ows:Operation>")


def _box(tag: str, crs: str, lower: str, upper: str) -> str:
    return (f"<{tag} crs={quoteattr(crs)}><ows:LowerCorner>{lower}</ows:LowerCorner>"
            f"<ows:UpperCorner>{upper}</ows:UpperCorner></{tag}>")
