"""The layout docs/architecture.md describes is the layout there is: its layers exist, in its
order, no module imports a layer above its own, the import graph has no cycles, and the
subpackages' __init__ files are empty (imports stay lazy)."""

import ast
import re

import pytest

from tests.support import ROOT

ENGINE = ROOT / "chalicelib"
DOC = ROOT / "docs" / "architecture.md"


def documented_layers() -> list[str]:
    """The layers in the order of docs/architecture.md's table (first column)."""
    layers = re.findall(r"^\| `(\w+)` \|", DOC.read_text(), flags=re.M)
    assert layers, "docs/architecture.md has no table of layers"
    return layers


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node) -> bool:
    test = node.test
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports(path) -> set[str]:
    """The chalicelib modules (or packages) the file at ``path`` imports."""
    return imports_of(path.read_text(), module_name(path), path.name == "__init__.py")


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """The chalicelib modules (or packages) ``source``, the text of ``module``, imports at
    run time (imports under ``if TYPE_CHECKING:`` only name types)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()

    def visit(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("chalicelib"))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("chalicelib"):
                    # `from chalicelib.pixels import render` imports chalicelib.pixels.render
                    for alias in child.names:
                        candidate = f"{target}.{alias.name}"
                        exists = (ROOT / (candidate.replace(".", "/") + ".py")).exists()
                        found.add(candidate if exists else target)
            visit(child)

    visit(ast.parse(source))
    return found


def modules() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(ENGINE.rglob("*.py"))}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_layer_the_doc_names_exists_and_no_other():
    layers = documented_layers()
    packages = sorted(p.parent.name for p in ENGINE.glob("*/__init__.py"))
    assert sorted(layers) == packages, (
        "docs/architecture.md's layers and chalicelib's subpackages differ")


def upward(graph: dict[str, set[str]], layers: list[str]) -> list[str]:
    """Each import in ``graph`` that reaches a layer after its module's own."""
    rank = {layer: i for i, layer in enumerate(layers)}
    found = []
    for module, targets in graph.items():
        own = layer_of(module)
        for target in sorted(targets):
            other = layer_of(target)
            if own is not None and other is not None and rank[other] > rank[own]:
                found.append(f"{module} imports {target}")
    return found


def test_no_module_imports_a_layer_above_its_own():
    found = upward(modules(), documented_layers())
    assert not found, "imports that reach a higher layer:\n" + "\n".join(found)


def test_the_walker_finds_an_upward_import():
    """The check above can fail: relative, absolute and function-level imports are seen,
    those under TYPE_CHECKING are not."""
    source = ("from typing import TYPE_CHECKING\n"
              "from .geo import Bounds\n"
              "from ..pixels import render\n"
              "if TYPE_CHECKING:\n    from ..api.params import Param\n"
              "def later():\n    import chalicelib.jobs.tilecache\n")
    found = imports_of(source, "chalicelib.core.records")
    assert found == {"chalicelib.core.geo", "chalicelib.pixels.render",
                     "chalicelib.jobs.tilecache"}
    assert upward({"chalicelib.core.records": found}, documented_layers()) == [
        "chalicelib.core.records imports chalicelib.jobs.tilecache",
        "chalicelib.core.records imports chalicelib.pixels.render"]


def test_the_import_graph_has_no_cycles():
    graph = modules()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(module, path):
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if target not in graph:
                continue
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("an import cycle: " + " -> ".join(cycle))
            if target not in state:
                walk(target, path + [target])
        state[module] = 2

    for module in graph:
        if module not in state:
            walk(module, [module])


def test_subpackage_init_files_are_empty():
    full = [str(p.relative_to(ROOT)) for p in ENGINE.glob("*/__init__.py")
            if p.read_text().strip()]
    assert not full, f"keep these empty (imports stay lazy): {full}"


def test_app_is_a_table_of_routes():
    """app.py holds routes and entry points: no raster library of its own."""
    tree = ast.parse((ROOT / "app.py").read_text())
    names = {a.name.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, (ast.Import, ast.ImportFrom))
             for a in (node.names if isinstance(node, ast.Import) else
                       [ast.alias(node.module or "")])}
    assert not names & {"rasterio", "numpy", "mercantile"}, names
