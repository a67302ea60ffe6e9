"""GDAL configuration options set for the whole process, whichever thread sets them.

rasterio's ``set_gdal_config`` calls ``CPLSetConfigOption`` on the main thread but
``CPLSetThreadLocalConfigOption`` on any other: options applied from a worker thread (the
reader pool, a ``chalice local`` request thread) hold in that thread only, and the egress
guard with them. So options are set here through GDAL's own C function, found in the
libgdal rasterio has loaded; :func:`forget` clears what GDAL caches of a remote file.
"""

import ctypes
import ctypes.util
import functools

import rasterio  # noqa: F401  # loads libgdal


@functools.cache
def _library() -> ctypes.CDLL:
    """The libgdal this process has loaded (rasterio's wheel bundles its own copy)."""
    path = None
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                name = line.rsplit(" ", 1)[-1].strip()
                if "/libgdal" in name and ".so" in name:
                    path = name
                    break
    except OSError:
        pass
    path = path or ctypes.util.find_library("gdal")
    if path is None:
        raise RuntimeError("libgdal is not loaded: cannot set GDAL's configuration")
    library = ctypes.CDLL(path)
    library.CPLSetConfigOption.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    library.CPLSetConfigOption.restype = None
    library.CPLGetConfigOption.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    library.CPLGetConfigOption.restype = ctypes.c_char_p
    library.VSICurlPartialClearCache.argtypes = [ctypes.c_char_p]
    library.VSICurlPartialClearCache.restype = None
    return library


def set_option(name: str, value: str | None) -> None:
    """Set (or, with None, unset) GDAL option ``name`` for every thread."""
    _library().CPLSetConfigOption(name.encode(), None if value is None else value.encode())


def get_option(name: str) -> str | None:
    """GDAL's value of ``name`` as the calling thread sees it."""
    found = _library().CPLGetConfigOption(name.encode(), None)
    return None if found is None else found.decode()


def forget(path: str) -> None:
    """Drop what GDAL's network file systems (/vsicurl/, /vsis3/) keep of ``path`` (its size,
    its cached ranges), so that the next open reads the file as it is now."""
    _library().VSICurlPartialClearCache(path.encode())
