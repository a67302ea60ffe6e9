"""Write docs/performance.md and docs/performance.png from bench/results/*.json.

    .venv/bin/python bench/report.py      (make bench runs every benchmark, then this)
"""

import json
from datetime import date

import common

DOCS = common.ROOT / "docs"


def load(name: str) -> dict | None:
    path = common.RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def plot(warm, handler, cold, requests, memory) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 7), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    if warm:
        labels = [f"{r['file'].replace('.tif', '')} {r['format']}" for r in warm["rows"]]
        ratios = [r["ratio"] for r in warm["rows"]]
        axes[0].barh(range(len(ratios)), ratios, color=["#2b8cbe" if r <= 1 else "#e34a33"
                                                        for r in ratios])
        axes[0].set_yticks(range(len(ratios)), labels, fontsize=7)
        axes[0].axvline(1.0, color="black", lw=0.8)
        axes[0].axvline(warm["target"], color="green", ls="--", lw=0.8, label="target")
        axes[0].set_title(f"warm tile, cogtiler / rio-tiler (median)\ngeo-mean {warm['ratio']:.2f}")
        axes[0].invert_yaxis()
        axes[0].legend(fontsize=7)
    pairs = []
    if handler:
        pairs.append(("warm tile via\nLambda handler\n(vs titiler+Mangum)", handler["ratio"],
                      handler["target"]))
    if handler and "png_ratio" in handler:
        pairs.append(("warm PNG via\nLambda handler\n(vs rio-tiler)", handler["png_ratio"],
                      handler["png_target"]))
    if cold:
        pairs.append(("cold start\n(vs titiler+Mangum)", cold["ratio"], cold["target"]))
    if pairs:
        axes[1].bar(range(len(pairs)), [p[1] for p in pairs], color="#2b8cbe")
        axes[1].scatter(range(len(pairs)), [p[2] for p in pairs], color="green", marker="_",
                        s=2000, label="target")
        axes[1].set_xticks(range(len(pairs)), [p[0] for p in pairs], fontsize=8)
        axes[1].axhline(1.0, color="black", lw=0.8)
        axes[1].set_title("cogtiler / reference (lower is better)")
        axes[1].legend(fontsize=7, loc="upper right")
    if memory:
        for impl, colour in (("cogtiler", "#2b8cbe"), ("titiler", "#e34a33")):
            samples = memory[impl]["samples"]
            axes[2].plot([s[0] for s in samples], [s[1] / 1e6 for s in samples], color=colour,
                         label=impl)
        axes[2].set_xlabel("tiles served")
        axes[2].set_ylabel("RSS (MB)")
        axes[2].set_title(f"memory over {memory['tiles']} tiles, one process")
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    DOCS.mkdir(exist_ok=True)
    fig.savefig(DOCS / "performance.png", dpi=110)


def ratio_table(rows: list, reference: str, label: str) -> list[str]:
    lines = [f"| file | format | tiles | cogtiler p50 / p90 ms | {label} p50 / p90 ms | ratio |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['format']} | {r['tiles']} | "
                     f"{r['cogtiler']['median_ms']:.1f} / {r['cogtiler']['p90_ms']:.1f} | "
                     f"{r[reference]['median_ms']:.1f} / {r[reference]['p90_ms']:.1f} | "
                     f"{r['ratio']:.2f} |")
    return lines


def mosaic_section(mosaic: dict) -> list[str]:
    out = ["## 6. Mosaic tiles (target: a tile over 4 files well under 4 × one file)", "",
           "The synthetic RGB COG cut into its four quadrants (each a COG), a MosaicJSON "
           "over them built by the engine; tiles where the quadrants meet, so each needs "
           "all four files. Warm, in process: the tile from the original single file, the "
           "same tile from `/mosaicjson` (files read on threads), and rio-tiler's "
           "`mosaic_reader` with `Reader.tile` + `render`.", "",
           "| tile | 1 file | mosaic (4 files) | × 1 file | rio-tiler mosaic | × rio-tiler |",
           "|---|---|---|---|---|---|"]
    for r in mosaic["rows"]:
        x, y, z = r["tile"]
        out.append(f"| {z}/{x}/{y} | {r['single_ms']:.1f} ms | {r['mosaic_ms']:.1f} ms | "
                   f"{r['mosaic_ms'] / r['single_ms']:.2f} | {r['rio_tiler_ms']:.1f} ms | "
                   f"{r['mosaic_ms'] / r['rio_tiler_ms']:.2f} |")
    return out + ["", f"**Geometric means: {mosaic['mosaic_over_single']:.2f} × one file, "
                  f"{mosaic['mosaic_over_rio_tiler']:.2f} × rio-tiler.** Over HTTP, the first "
                  f"mosaic tile took {mosaic['http_first_tile_requests']} requests (the "
                  "document, four file headers, data) and each warm tile "
                  f"{mosaic['http_warm_requests_per_tile']:.2f} (four files).", ""]


def catalog_section(result: dict) -> list[str]:
    out = ["## 8. Catalog mosaics (target: a search tile close to the same MosaicJSON's)", "",
           "The four quadrants of section 6 over HTTP (a range server), as a MosaicJSON and as "
           "four STAC items in a real STAC API (stac-fastapi-pgstac on PostgreSQL + PgSTAC, on "
           "127.0.0.1). Warm, in process: the MosaicJSON tile; the collection's tile with its "
           "search new (a map's next tile: one search); the same tile repeated (the search's "
           "answer kept for SOURCE_TTL).", "",
           "| tile | MosaicJSON | search, new tile | × MosaicJSON | search, repeated | "
           "× MosaicJSON |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        x, y, z = r["tile"]
        out.append(f"| {z}/{x}/{y} | {r['mosaicjson_ms']:.1f} ms | {r['search_ms']:.1f} ms | "
                   f"{r['search_ms'] / r['mosaicjson_ms']:.2f} | {r['repeated_ms']:.1f} ms | "
                   f"{r['repeated_ms'] / r['mosaicjson_ms']:.2f} |")
    return out + ["", f"**Geometric means: {result['search_over_mosaicjson']:.2f} × the "
                  f"MosaicJSON for a new tile, {result['repeated_over_mosaicjson']:.2f} × for a "
                  f"repeated one.** Requests to the STAC API: "
                  f"{result['api_requests_first_tile']} for a container's first tile (the "
                  "collection, the search's first item, the tile's search), then "
                  f"{result['api_requests_per_new_tile']:.2f} per new tile and "
                  f"{result['api_requests_per_repeated_tile']:.2f} per repeated one; range "
                  f"requests {result['range_requests_first_tile']} for the first tile, then "
                  f"{result['range_requests_per_tile']:.2f} per tile (four files).", ""]


def band_subset_section(result: dict) -> list[str]:
    out = ["## 7. Band subsets (target: `bidx=1` within 1.2 × every band)", "",
           "A tile of one band against the tile of every band, from zoom 0 to the native zoom "
           "at each file's centre, the two alternating. GDAL uses a warped VRT's overviews "
           "only when every band is read at once; a subset used to be warped at the VRT's "
           "full resolution (57 s for a z0 tile of cog_rgb_mask.tif, 3.1 s for the demo's). "
           "The engine reads every band and keeps the asked ones.", "",
           "| file | tiles | every band | `bidx=1` | ratio (median) | worst tile |",
           "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        out.append(f"| {r['file']} | {r['tiles']} | {r['all_ms']:.1f} ms | "
                   f"{r['subset_ms']:.1f} ms | {r['ratio']:.2f} | {r['worst_ratio']:.2f} |")
    return out + [""]


def main() -> None:
    warm, handler, cold = load("warm_tiles"), load("handler"), load("cold_start")
    requests, memory = load("requests"), load("memory")
    plot(warm, handler, cold, requests, memory)
    out = ["# Performance", "",
           f"Measured by `make bench` on {date.today():%Y-%m-%d}, on a "
           f"{(warm or handler or {}).get('cpus', '?')}-core machine, Python "
           f"{(warm or handler or {}).get('python', '?')}. Every figure is a pair or a ratio "
           "measured in the same run, on the same tiles and files, the two sides alternating, "
           "so that it holds on a noisy machine. Reproduce with `make bench` (about 15 "
           "minutes; it builds the synthetic COGs, vendor/ and the dev package if missing).", "",
           "![cogtiler against rio-tiler and titiler](performance.png)", ""]
    if warm:
        out += ["## 1. Warm tile, in process (target: ≤ 0.8 × rio-tiler)", "",
                "`chalicelib.operations.tiler.tile` (allow-list, dataset cache, read, render, "
                "encode) "
                "against rio-tiler's `Reader.tile` + `render`, a reader kept open per file. "
                "Non-uint8 data gets the same `rescale` on both sides (the DEM also the terrain "
                "colormap), paletted data its palette.", ""]
        out += ratio_table(warm["rows"], "rio_tiler", "rio-tiler")
        out += ["", f"**Geometric mean of the median ratios: {warm['ratio']:.2f}.**", ""]
    if handler:
        out += ["## 2. Warm tile through the Lambda handler (target: ≤ 0.7 × titiler)", "",
                "API Gateway REST proxy events into `app.app`, against titiler.core's "
                "TilerFactory behind Mangum, both in this process.", ""]
        out += ratio_table(handler["rows"], "titiler", "titiler")
        out += ["", f"**Geometric mean: {handler['ratio']:.2f}.**", ""]
    if handler and handler.get("algorithm_rows"):
        out += ["### Terrain tiles (algorithms) against titiler", "",
                "PNG tiles of the DEM through both handlers, the same tiles: `algorithm="
                "hillshade&buffer=3` (titiler's recipe, 256-pixel tiles on both sides) and "
                "`algorithm=terrainrgb`. The format column names the algorithm.", ""]
        out += ratio_table(handler["algorithm_rows"], "titiler", "titiler")
        out.append("")
    if handler and "png_rows" in handler:
        out += [f"### PNG through the handler against rio-tiler (target: ≤ "
                f"{handler['png_target']} × rio-tiler, bytes ≤ {handler['png_bytes_target']} ×)",
                "", "The same events into `app.app` (PNG), against rio-tiler's `Reader.tile` + "
                "`render` alone (no HTTP layer on its side), with the same rescale and "
                "colormaps as section 1; the bytes of every tile summed on both sides.", "",
                "| file | tiles | handler p50 / p90 ms | rio-tiler p50 / p90 ms | ratio | "
                "bytes (KB) | rio-tiler bytes (KB) | bytes ratio |",
                "|---|---|---|---|---|---|---|---|"]
        for r in handler["png_rows"]:
            out.append(f"| {r['file']} | {r['tiles']} | {r['cogtiler']['median_ms']:.1f} / "
                       f"{r['cogtiler']['p90_ms']:.1f} | {r['rio_tiler']['median_ms']:.1f} / "
                       f"{r['rio_tiler']['p90_ms']:.1f} | {r['ratio']:.2f} | "
                       f"{r['bytes']['cogtiler'] / 1024:.0f} | "
                       f"{r['bytes']['rio_tiler'] / 1024:.0f} | {r['bytes_ratio']:.3f} |")
        out += ["", f"**Geometric mean over the real COGs ({', '.join(common.REAL)}): "
                f"{handler['png_ratio']:.2f}; their bytes {handler['png_bytes_ratio']:.3f} × "
                "rio-tiler's.**", ""]
    if cold:
        runs = len(cold["cogtiler_s"])
        out += ["## 3. Cold start (target: ≤ 0.5 × titiler)", "",
                "A fresh Python 3.12 process from the packaged artifact to its first PNG tile, "
                "through the real awslambdaric and the Runtime API emulator of "
                "`tools/verify_package.py` (import path: the package, a runtime folder with "
                "awslambdaric and boto3 as Lambda's, the standard library; no byte-code "
                "writing, as /var/task is read-only). titiler.core + Mangum installed the same "
                "way, with pip's byte-code.", "",
                f"| | median of {runs} | runs |", "|---|---|---|",
                f"| cogtiler | {cold['cogtiler_median_s'] * 1000:.0f} ms | "
                + ", ".join(f"{t * 1000:.0f}" for t in cold["cogtiler_s"]) + " |",
                f"| titiler + Mangum | {cold['titiler_median_s'] * 1000:.0f} ms | "
                + ", ".join(f"{t * 1000:.0f}" for t in cold["titiler_s"]) + " |",
                "", f"**Ratio: {cold['ratio']:.2f}.**", ""]
    if requests:
        out += ["## 4. Requests and bytes per tile (target: one GET per warm tile)", "",
                "From a range-capable HTTP server on 127.0.0.1, each side in a fresh process: "
                "the first tile of a cold container (open included), then warm tiles near it. "
                "rio-tiler runs with titiler's recommended GDAL settings and a reader per "
                "request, as titiler does.", "",
                "| file | | cold: requests | cold: KB | warm: GET per tile | warm: KB per tile |",
                "|---|---|---|---|---|---|"]
        for r in requests["rows"]:
            out.append(f"| {r['file']} | {r['impl']} | {r['cold_requests']} | "
                       f"{r['cold_bytes'] / 1024:.0f} | {r['warm_requests_per_tile']:.2f} | "
                       f"{r['warm_bytes_per_tile'] / 1024:.0f} |")
        out += ["", "Against moto's S3 (`tests/test_s3.py`): opening a COG is one GET of the "
                "32 KB header (no HEAD, no listing), a cold container's first tile 6 requests "
                "in all, warm tiles 0.75 GET each over 24 neighbouring tiles.", ""]
    if memory:
        c, t = memory["cogtiler"], memory["titiler"]
        out += [f"## 5. Memory over {memory['tiles']} tiles (target: growth < 30 MB)", "",
                "One process per side, after a warm-up that serves every distinct request once "
                f"({c['distinct_requests']} tiles of five files in three formats), then cycles "
                "them.", "",
                "| | RSS after warm-up | growth | peak extra per request |", "|---|---|---|---|",
                f"| cogtiler | {c['baseline'] / 1e6:.0f} MB | {c['growth'] / 1e6:+.1f} MB | "
                f"{c['peak_per_request'] / 1e6:.1f} MB |",
                f"| titiler + Mangum | {t['baseline'] / 1e6:.0f} MB | "
                f"{t['growth'] / 1e6:+.1f} MB | "
                f"{t['peak_per_request'] / 1e6:.1f} MB |", ""]
    mosaic = load("mosaic")
    if mosaic:
        out += mosaic_section(mosaic)
    subset = load("band_subset")
    if subset:
        out += band_subset_section(subset)
    searched = load("catalog")
    if searched:
        out += catalog_section(searched)
    notes = common.ROOT / "bench" / "NOTES.md"
    if notes.exists():
        out += [notes.read_text().strip(), ""]
    (DOCS / "performance.md").write_text("\n".join(out))
    print(f"wrote {DOCS / 'performance.md'} and performance.png")


if __name__ == "__main__":
    main()
