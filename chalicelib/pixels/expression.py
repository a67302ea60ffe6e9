"""Band math: ``(b4-b3)/(b4+b3)``, ``where(b1>100, 1, 0)``, ``sqrt(b1);b2*2``.

One output band per ``;``-separated part. Variables are bands (``b1``...) of one file, or,
for multi-file sources (``parse(text, named=True)``), any name the source defines (a STAC
item's assets: ``(nir-red)/(nir+red)``, ``visual_b2``); the source checks them.

Parsed with Python's ``ast`` and walked over a whitelist of node types; nothing is ever
passed to ``eval``/``exec``. Numbers become float64 numpy scalars, so ``9**9**9`` is an
overflow to ``inf``, not an endless big-integer computation.
"""

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import BadRequest

MAX_LENGTH = 1000
MAX_NODES = 200
MAX_OUTPUTS = 16

_BINARY: dict[type, Callable[..., Any]] = {
    ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide, ast.Mod: np.mod, ast.Pow: np.power,
    ast.BitAnd: np.logical_and, ast.BitOr: np.logical_or,
}
_UNARY: dict[type, Callable[..., Any]] = {
    ast.USub: np.negative, ast.UAdd: operator.pos, ast.Not: np.logical_not,
    ast.Invert: np.logical_not}
_COMPARE: dict[type, Callable[..., Any]] = {
    ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal,
    ast.Eq: np.equal, ast.NotEq: np.not_equal}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": np.sqrt, "log": np.log, "log10": np.log10, "log2": np.log2, "log1p": np.log1p,
    "exp": np.exp, "abs": np.abs, "where": np.where, "minimum": np.minimum,
    "maximum": np.maximum, "clip": np.clip, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan, "arctan2": np.arctan2,
    "floor": np.floor, "ceil": np.ceil, "round": np.round, "isnan": np.isnan,
}
_ARITY = {"where": 3, "clip": 3, "minimum": 2, "maximum": 2, "arctan2": 2}
_CONSTANTS = {"pi": np.float64(np.pi), "e": np.float64(np.e)}


#: A '+' typed in a query string arrives as a space (form encoding).
PLUS_HINT = " (in a URL, '+' means a space: write '+' as %2B)"


def _band_number(name: str) -> int | None:
    if len(name) > 1 and name[0] in "bB" and name[1:].isascii() and name[1:].isdigit():
        number = int(name[1:])
        return number if number >= 1 else None
    return None


def band_number(name: str) -> int | None:
    """1-based band number of a band name (``b3``, ``B3``), else None."""
    return _band_number(name)


@dataclass(frozen=True)
class Expression:
    """A parsed expression: ``names`` are the variables it reads (as written, in order of
    first use); ``bands`` the 1-based numbers of those that are band names."""

    text: str
    outputs: tuple[ast.AST, ...]
    names: tuple[str, ...]
    #: Operations and variables in all outputs: a bound on the arrays alive at once.
    terms: int = 1

    def bytes_per_pixel(self) -> int:
        """A bound on the memory evaluation takes per pixel: a float64 array per input, per
        term (numpy makes one per operation) and per output."""
        return 8 * (len(self.names) + self.terms + len(self.outputs))

    @property
    def bands(self) -> tuple[int, ...]:
        return tuple(sorted({n for n in map(_band_number, self.names) if n is not None}))

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.text.split(";") if part.strip())

    def evaluate(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Evaluate over ``{variable name: 2-D array}``; returns float32 (outputs, h, w)."""
        shape = next(iter(values.values())).shape
        results = []
        with np.errstate(all="ignore"):
            for node in self.outputs:
                value = _Evaluator(values).visit(node)
                results.append(np.broadcast_to(np.asarray(value, dtype="float64"), shape))
            # beyond float32's range: +-inf, as float64 beyond its own
            return np.stack(results).astype("float32", copy=False)


class _Evaluator(ast.NodeVisitor):
    def __init__(self, values):
        self.values = values

    def generic_visit(self, node):  # anything not whitelisted below
        raise BadRequest(f"'{type(node).__name__}' is not allowed in an expression")

    def visit_Expression(self, node):
        return self.visit(node.body)

    def visit_Constant(self, node):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise BadRequest("expressions take numbers and band names (b1, b2...) only")
        return np.float64(node.value)

    def visit_Name(self, node):
        if node.id in self.values:
            return self.values[node.id].astype("float64", copy=False)
        return _CONSTANTS[node.id.lower()]

    def visit_BinOp(self, node):
        return _BINARY[type(node.op)](self.visit(node.left), self.visit(node.right))

    def visit_UnaryOp(self, node):
        return _UNARY[type(node.op)](self.visit(node.operand))

    def visit_BoolOp(self, node):
        fn = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        values = [self.visit(v) for v in node.values]
        result = values[0]
        for value in values[1:]:
            result = fn(result, value)
        return result

    def visit_Compare(self, node):
        left, result = self.visit(node.left), None
        for op, comparator in zip(node.ops, node.comparators):
            right = self.visit(comparator)
            part = _COMPARE[type(op)](left, right)
            result = part if result is None else np.logical_and(result, part)
            left = right
        return result

    def visit_IfExp(self, node):
        return np.where(self.visit(node.test), self.visit(node.body), self.visit(node.orelse))

    def visit_Call(self, node):
        return _FUNCTIONS[node.func.id.lower()](*[self.visit(a) for a in node.args])


def _check(node: ast.AST, count: list, named: bool) -> None:
    """Validate the tree once at parse time, so evaluation meets only known nodes."""
    count[0] += 1
    if count[0] > MAX_NODES:
        raise BadRequest(f"the expression is too complex (more than {MAX_NODES} terms)")
    if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
        raise BadRequest(f"the operator '{type(node.op).__name__}' is not allowed in an expression")
    if isinstance(node, ast.UnaryOp) and type(node.op) not in _UNARY:
        raise BadRequest(f"the operator '{type(node.op).__name__}' is not allowed in an expression")
    if isinstance(node, ast.Compare) and any(type(op) not in _COMPARE for op in node.ops):
        raise BadRequest("only <, <=, >, >=, == and != comparisons are allowed")
    if isinstance(node, ast.Name):
        if not named and _band_number(node.id) is None and node.id.lower() not in _CONSTANTS:
            raise BadRequest(f"unknown name '{node.id}' in expression: bands are b1, b2, ...")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id.lower() not in _FUNCTIONS:
            raise BadRequest("unknown function in expression; allowed: "
                             + ", ".join(sorted(_FUNCTIONS)))
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise BadRequest("functions in expressions take positional arguments only")
        name = node.func.id.lower()
        if len(node.args) != _ARITY.get(name, 1):
            raise BadRequest(f"{name}() takes {_ARITY.get(name, 1)} argument(s)")
        for arg in node.args:
            _check(arg, count, named)
        return
    elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare,
                               ast.IfExp, ast.Constant, ast.Load, ast.operator, ast.unaryop,
                               ast.cmpop, ast.boolop)):
        raise BadRequest(f"'{type(node).__name__}' is not allowed in an expression")
    for child in ast.iter_child_nodes(node):
        _check(child, count, named)


#: Nodes whose evaluation makes a new array (a variable's too: it is converted to float64).
_ARRAY_NODES = (ast.BinOp, ast.UnaryOp, ast.Call, ast.Compare, ast.BoolOp, ast.IfExp, ast.Name)


def _variables_and_terms(tree: ast.AST) -> tuple[list[str], int]:
    """The names read as variables (not function names, not constants), in order of use,
    and how many nodes make an array (see :data:`_ARRAY_NODES`)."""
    nodes = list(ast.walk(tree))
    called = {id(node.func) for node in nodes if isinstance(node, ast.Call)}
    found, terms = [], 0
    for node in nodes:
        if id(node) in called or not isinstance(node, _ARRAY_NODES):
            continue
        terms += 1
        if isinstance(node, ast.Name) and node.id.lower() not in _CONSTANTS:
            found.append(node.id)
    return found, terms


def parse(text: str, named: bool = False) -> Expression:
    """Parse an expression, or raise :class:`BadRequest` saying what is wrong with it.
    ``named``: variables may be any name (checked by the source), not only ``b1``..."""
    raw = text or ""
    text = raw.strip()
    if not text:
        raise BadRequest("'expression' is empty")
    if raw.rstrip() != raw or any(p.rstrip() != p for p in raw.split(";")[:-1]):
        raise BadRequest(f"the expression '{text[:80]}' ends with a space, where an operator "
                         f"is missing{PLUS_HINT}")
    if len(text) > MAX_LENGTH:
        raise BadRequest(f"'expression' is longer than {MAX_LENGTH} characters")
    parts = [p.strip() for p in text.split(";") if p.strip()]
    if len(parts) > MAX_OUTPUTS:
        raise BadRequest(f"an expression gives at most {MAX_OUTPUTS} outputs (';'-separated)")
    outputs: list[ast.AST] = []
    names: list[str] = []
    terms = 0
    for part in parts:
        try:
            tree = ast.parse(part, mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise BadRequest(f"cannot parse expression '{part[:80]}': check the parentheses "
                             "and operators" + (PLUS_HINT if " " in part else "")) from None
        _check(tree, [0], named)
        variables, count = _variables_and_terms(tree)
        terms += count
        names.extend(n for n in variables if n not in names)
        outputs.append(tree)
    if not names:
        raise BadRequest("the expression uses no band: refer to bands as b1, b2, ..."
                         + (" or by asset name" if named else ""))
    return Expression(text, tuple(outputs), tuple(names), terms)
