# SPDX-License-Identifier: AGPL-3.0-or-later
"""Compilation of sqlglot expression trees into Python closures, once, at plan time.

A compiled expression is a :class:`CExpr`: ``fn(row, env)`` returns the value (internal
representation, ``None`` for NULL; predicates return True/False/None, SQL's three-valued
logic). ``row`` is the tuple the expression is evaluated on (the concatenation of the joined
tables' rows, or a group row after aggregation) and ``env`` an :class:`Env` holding the
(coerced) parameters and the transaction timestamp.
"""

from __future__ import annotations

import decimal
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlglot import exp

from voltdb_py.errors import PlanningError, SQLError, TypeMismatchError, ValueOutOfRangeError
from voltdb_py.types import DECIMAL_QUANTUM, INTEGER_TYPES, VoltType, coerce, decimal_value, timestamp_micros

BIGINT_MAX = 9223372036854775807
_DEC_CTX = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)

NUMERIC = frozenset(INTEGER_TYPES | {VoltType.FLOAT, VoltType.DECIMAL})


class Env:
    """Per-execution environment of compiled closures: parameters and NOW."""

    __slots__ = ("params", "now")

    def __init__(self, params: list, now: int | None = 0):
        self.params = params
        self.now = now


@dataclass(slots=True)
class CExpr:
    """A compiled expression: its closure, type (None when unknown) and what it reads."""

    fn: Callable[[tuple, Env], Any]
    vtype: VoltType | None
    sources: frozenset = frozenset()     # indexes of the FROM sources it reads
    const: bool = False                  # no columns, no parameters: value known at plan time
    param: int | None = None             # set when the expression is exactly one '?'
    column: int | None = None            # row position when it is exactly one column
    size: int = 0
    has_agg: bool = False

    def value(self) -> Any:
        return self.fn((), Env([], 0))


@dataclass(slots=True)
class Source:
    """One FROM item: its alias, catalog table, and offset of its columns in joined rows."""

    alias: str
    table: Any
    offset: int


@dataclass
class Scope:
    """Name resolution and parameter bookkeeping of one statement."""

    sources: list[Source]
    param_types: dict[int, VoltType] = field(default_factory=dict)     # reported
    param_coerce: dict[int, tuple] = field(default_factory=dict)       # (vtype, size)
    # aggregate mode (after GROUP BY): set by the planner
    agg_mode: bool = False
    group_keys: list = field(default_factory=list)        # (sql key, column position or None)
    group_types: list = field(default_factory=list)
    aggs: list = field(default_factory=list)              # AggSpec
    extra_names: dict[str, CExpr] = field(default_factory=dict)  # output aliases (ORDER BY)

    def resolve(self, name: str, qualifier: str | None) -> tuple[int, Source, int]:
        """Return (row position, source, column position in its table)."""
        up = name.upper()
        found = []
        for s in self.sources:
            if qualifier is not None and s.alias != qualifier.upper():
                continue
            for i, c in enumerate(s.table.columns):
                if c.name == up:
                    found.append((s.offset + i, s, i))
        if not found:
            if qualifier is not None and not any(s.alias == qualifier.upper() for s in self.sources):
                raise PlanningError(f"object not found: table or alias {qualifier.upper()!r} "
                                    f"in column reference {qualifier.upper()}.{up}")
            where = f"{qualifier.upper()}." if qualifier else ""
            raise PlanningError(f"user lacks privilege or object not found: unknown column {where}{up}")
        if len(found) > 1:
            raise PlanningError(f"column {up} is ambiguous (it is in several tables of the FROM clause)")
        return found[0]


@dataclass(slots=True)
class AggSpec:
    func: str              # COUNT_STAR, COUNT, SUM, MIN, MAX, AVG
    arg: CExpr | None
    distinct: bool
    vtype: VoltType
    key: str


def type_name(t: VoltType | None) -> str:
    return "unknown" if t is None else t.sql_name


# ---------------------------------------------------------------- runtime helpers

def _check_int(v: int) -> int:
    if -BIGINT_MAX <= v <= BIGINT_MAX:
        return v
    raise ValueOutOfRangeError(f"numeric overflow: {v} is out of the BIGINT range")


def _dec(v):
    return v.quantize(DECIMAL_QUANTUM, context=_DEC_CTX)


def _numeric_pair(a, b):
    """Return a, b made compatible for arithmetic (Decimal with float -> floats)."""
    if isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
        raise SQLError(f"arithmetic on non-numeric values {a!r}, {b!r}")
    if isinstance(a, float) and isinstance(b, decimal.Decimal):
        return a, float(b)
    if isinstance(b, float) and isinstance(a, decimal.Decimal):
        return float(a), b
    return a, b


def arith(op: str, a, b):
    if a is None or b is None:
        return None
    a, b = _numeric_pair(a, b)
    if isinstance(a, int) and isinstance(b, int):
        if op == "+":
            return _check_int(a + b)
        if op == "-":
            return _check_int(a - b)
        if op == "*":
            return _check_int(a * b)
        if b == 0:
            raise SQLError("division by zero")
        q = abs(a) // abs(b)
        if op == "/":
            return q if (a >= 0) == (b >= 0) else -q
        r = abs(a) - q * abs(b)   # MOD: sign of the dividend (Java)
        return r if a >= 0 else -r
    if isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        a = a if isinstance(a, decimal.Decimal) else decimal.Decimal(a)
        b = b if isinstance(b, decimal.Decimal) else decimal.Decimal(b)
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = _DEC_CTX.multiply(a, b)
        else:
            if b == 0:
                raise SQLError("division by zero")
            r = _DEC_CTX.divide(a, b) if op == "/" else _DEC_CTX.remainder(a, b)
        return decimal_value(r)
    a = float(a)
    b = float(b)
    if op == "+":
        r = a + b
    elif op == "-":
        r = a - b
    elif op == "*":
        r = a * b
    else:
        if b == 0:
            raise SQLError("division by zero")
        r = a / b if op == "/" else math.fmod(a, b)
    if math.isinf(r) or math.isnan(r):
        raise ValueOutOfRangeError("numeric overflow in FLOAT arithmetic")
    return r


def _cmp_values(a, b) -> int:
    if isinstance(a, (int, float, decimal.Decimal)) and isinstance(b, (int, float, decimal.Decimal)):
        return (a > b) - (a < b)
    if type(a) is not type(b):
        raise SQLError(f"cannot compare {type(a).__name__} value {a!r} with "
                       f"{type(b).__name__} value {b!r}")
    return (a > b) - (a < b)


_CMP = {
    "=": lambda c: c == 0, "<>": lambda c: c != 0, "<": lambda c: c < 0,
    "<=": lambda c: c <= 0, ">": lambda c: c > 0, ">=": lambda c: c >= 0,
}


def like_regex(pattern: str, escape: str | None) -> re.Pattern:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if escape is not None and ch == escape:
            if i + 1 >= len(pattern):
                raise SQLError(f"LIKE pattern {pattern!r} ends with its escape character")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def sort_key(v):
    """Key giving VoltDB's order with NULL first."""
    return (0, 0) if v is None else (1, v)


# ---------------------------------------------------------------- compiler

_AGG_CLASSES = (exp.Count, exp.Sum, exp.Min, exp.Max, exp.Avg)


def _unwrap(node):
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def is_aggregate(node) -> bool:
    return any(isinstance(n, _AGG_CLASSES) for n in node.walk())


def norm_key(node) -> str:
    return _unwrap(node).sql(dialect=None).upper()


def _literal_type(v) -> VoltType | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return VoltType.TINYINT
    if isinstance(v, int):
        return VoltType.BIGINT
    if isinstance(v, float):
        return VoltType.FLOAT
    if isinstance(v, decimal.Decimal):
        return VoltType.DECIMAL
    if isinstance(v, str):
        return VoltType.STRING
    if isinstance(v, bytes):
        return VoltType.VARBINARY
    return None


def const_expr(value, vtype=None) -> CExpr:
    return CExpr(lambda r, e, v=value: v, vtype if vtype is not None else _literal_type(value),
                 const=True)


def _union(*cs):
    s = frozenset()
    for c in cs:
        s |= c.sources
    return s


def _arith_type(op, a: VoltType | None, b: VoltType | None, what: str) -> VoltType | None:
    for t in (a, b):
        if t is not None and t not in NUMERIC:
            raise PlanningError(f"incompatible data type in operation: {what} needs numeric "
                                f"operands, got {t.sql_name}")
    if a is None or b is None:
        return a or b
    if VoltType.FLOAT in (a, b):
        return VoltType.FLOAT
    if VoltType.DECIMAL in (a, b):
        return VoltType.DECIMAL
    return VoltType.BIGINT


def _family(t):
    if t in NUMERIC:
        return "num"
    if t is VoltType.STRING:
        return "str"
    if t is VoltType.VARBINARY:
        return "bin"
    if t is VoltType.TIMESTAMP:
        return "ts"
    return None


def widen(t: VoltType) -> VoltType:
    return VoltType.BIGINT if t in INTEGER_TYPES else t


class Compiler:
    """Compiles expressions against a Scope."""

    def __init__(self, scope: Scope):
        self.scope = scope

    # parameters ---------------------------------------------------------------
    def hint(self, c: CExpr, vtype: VoltType | None, size: int = 0, widened: bool = True):
        """Give a bare '?' the type its context expects."""
        if c.param is None or vtype is None or vtype is VoltType.NULL:
            return
        self.scope.param_types.setdefault(c.param, vtype)
        self.scope.param_coerce.setdefault(c.param, (widen(vtype) if widened else vtype, size))
        if c.vtype is None:
            c.vtype = vtype

    def compile(self, node) -> CExpr:
        node = _unwrap(node)
        sc = self.scope
        if sc.agg_mode:
            key = norm_key(node)
            for gi, (gkey, gpos) in enumerate(sc.group_keys):
                if key == gkey or (gpos is not None and isinstance(node, exp.Column)
                                   and not isinstance(node.this, exp.Star)
                                   and self._try_pos(node) == gpos):
                    t = sc.group_types[gi]
                    return CExpr(lambda r, e, i=gi: r[i], t, frozenset())
            if isinstance(node, _AGG_CLASSES):
                return self._aggregate(node)
            if isinstance(node, exp.Column) and not self._is_now(node):
                name = node.name.upper()
                if name in sc.extra_names:
                    return sc.extra_names[name]
                self._col_pos(node)  # raises if unknown
                raise PlanningError(f"expression not in aggregate or GROUP BY columns: {node.sql()}")
        elif isinstance(node, _AGG_CLASSES):
            raise PlanningError(f"aggregate {node.sql()} is not allowed here")
        meth = getattr(self, "c_" + type(node).__name__, None)
        if meth is None:
            raise PlanningError(f"unsupported SQL construct: {node.sql()} ({type(node).__name__})")
        return meth(node)

    def _col_pos(self, node) -> int:
        tbl = node.table or None
        return sc_resolve(self.scope, node.name, tbl)[0]

    def _try_pos(self, node):
        try:
            return self._col_pos(node)
        except PlanningError:
            return None

    def _is_now(self, node) -> bool:
        if node.name.upper() not in ("NOW", "CURRENT_TIMESTAMP") or node.table:
            return False
        try:
            self.scope.resolve(node.name, None)
            return False
        except PlanningError:
            return True

    # leaves ---------------------------------------------------------------------
    def c_Column(self, node):
        if isinstance(node.this, exp.Star):
            raise PlanningError(f"{node.sql()} is only allowed in the select list")
        if self._is_now(node):
            return self._now()
        if not node.table and node.name.upper() in self.scope.extra_names:
            return self.scope.extra_names[node.name.upper()]
        pos, src, ci = sc_resolve(self.scope, node.name, node.table or None)
        col = src.table.columns[ci]
        return CExpr(lambda r, e, i=pos: r[i], col.vtype, frozenset([self.scope.sources.index(src)]),
                     column=pos, size=col.size)

    def _now(self):
        return CExpr(lambda r, e: e.now, VoltType.TIMESTAMP)

    def c_CurrentTimestamp(self, node):
        return self._now()

    def c_Literal(self, node):
        if node.is_string:
            return const_expr(node.this, VoltType.STRING)
        text = node.this
        try:
            if re.fullmatch(r"[+-]?\d+", text):
                v = int(text)
                if abs(v) > BIGINT_MAX:
                    return const_expr(decimal_value(text), VoltType.DECIMAL)
                return const_expr(v, VoltType.BIGINT)
            return const_expr(float(text), VoltType.FLOAT)
        except (ValueError, SQLError, ValueOutOfRangeError):
            raise PlanningError(f"bad numeric literal {text!r}") from None

    def c_Unhex(self, node):
        arg = node.this
        if not (isinstance(arg, exp.Literal) and arg.is_string):
            raise PlanningError("X'...' needs a literal string of hex digits")
        text = arg.this
        if len(text) % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", text):
            raise PlanningError(f"X'{text}' is not an even number of hex digits")
        return const_expr(bytes.fromhex(text), VoltType.VARBINARY)

    def c_Null(self, node):
        return CExpr(lambda r, e: None, None, const=True)

    def c_Boolean(self, node):
        return const_expr(bool(node.this), VoltType.TINYINT)

    def c_Placeholder(self, node):
        name = node.this
        if not isinstance(name, str) or not name.startswith("p") or not name[1:].isdigit():
            raise PlanningError(f"unsupported parameter {node.sql()} (use '?')")
        i = int(name[1:])
        return CExpr(lambda r, e, i=i: e.params[i], self.scope.param_types.get(i), param=i)

    def c_HexString(self, node):
        try:
            return const_expr(bytes.fromhex(node.this), VoltType.VARBINARY)
        except ValueError:
            raise PlanningError(f"bad hex literal {node.sql()}") from None

    # arithmetic -----------------------------------------------------------------
    def _binary_arith(self, node, op):
        a = self.compile(node.this)
        b = self.compile(node.expression)
        self.hint(a, b.vtype if b.vtype in NUMERIC else None)
        self.hint(b, a.vtype if a.vtype in NUMERIC else None)
        t = _arith_type(op, a.vtype, b.vtype, f"'{node.sql()}'")
        fa, fb = a.fn, b.fn
        return self._mk(lambda r, e: arith(op, fa(r, e), fb(r, e)), t, a, b)

    def _mk(self, fn, t, *parts, size=0):
        c = CExpr(fn, t, _union(*parts), const=all(p.const for p in parts), size=size,
                  has_agg=any(p.has_agg for p in parts))
        if c.const and not c.has_agg:
            try:  # fold constants now (errors show at run time)
                v = c.fn((), Env([], 0))
                c.fn = lambda r, e, v=v: v
            except Exception:  # noqa: BLE001 - leave the error for execution
                pass
        return c

    def c_Add(self, node):
        return self._binary_arith(node, "+")

    def c_Sub(self, node):
        return self._binary_arith(node, "-")

    def c_Mul(self, node):
        return self._binary_arith(node, "*")

    def c_Div(self, node):
        return self._binary_arith(node, "/")

    def c_Mod(self, node):
        return self._binary_arith(node, "%")

    def c_Neg(self, node):
        a = self.compile(node.this)
        self.hint(a, VoltType.FLOAT)
        if a.vtype is not None and a.vtype not in NUMERIC:
            raise PlanningError(f"unary minus needs a numeric operand, got {a.vtype.sql_name}")
        fa = a.fn
        t = VoltType.BIGINT if a.vtype in INTEGER_TYPES else a.vtype
        return self._mk(lambda r, e: None if (v := fa(r, e)) is None else -v, t, a)

    def c_DPipe(self, node):
        return self._concat([node.this, node.expression])

    def c_Concat(self, node):
        return self._concat(node.expressions)

    def _concat(self, nodes):
        parts = [self.compile(n) for n in nodes]
        for p in parts:
            self.hint(p, VoltType.STRING, widened=False)
            if p.vtype is not None and p.vtype is not VoltType.STRING and p.vtype not in NUMERIC:
                raise PlanningError(f"concatenation needs VARCHAR operands, got {p.vtype.sql_name}")
        fns = [p.fn for p in parts]

        def f(r, e):
            out = []
            for fn in fns:
                v = fn(r, e)
                if v is None:
                    return None
                out.append(v if isinstance(v, str) else str(v))
            return "".join(out)
        return self._mk(f, VoltType.STRING, *parts)

    # comparisons and logic --------------------------------------------------------
    def comparison(self, a: CExpr, b: CExpr, op: str, what: str) -> CExpr:
        self.hint(a, b.vtype, b.size)
        self.hint(b, a.vtype, a.size)
        fa_, fb_ = _family(a.vtype), _family(b.vtype)
        if a.vtype is VoltType.TIMESTAMP and b.const and b.vtype is VoltType.STRING:
            b = const_expr(timestamp_micros(b.value()), VoltType.TIMESTAMP)
            fb_ = "ts"
        if b.vtype is VoltType.TIMESTAMP and a.const and a.vtype is VoltType.STRING:
            a = const_expr(timestamp_micros(a.value()), VoltType.TIMESTAMP)
            fa_ = "ts"
        if fa_ == "ts" and fb_ == "num" and b.vtype in INTEGER_TYPES:
            fb_ = "ts"
        if fb_ == "ts" and fa_ == "num" and a.vtype in INTEGER_TYPES:
            fa_ = "ts"
        if fa_ and fb_ and fa_ != fb_:
            raise PlanningError(f"incompatible data types in comparison {what}: "
                                f"{a.vtype.sql_name} and {b.vtype.sql_name}")
        fa, fb = a.fn, b.fn
        test = _CMP[op]

        def f(r, e):
            x = fa(r, e)
            if x is None:
                return None
            y = fb(r, e)
            if y is None:
                return None
            return test(_cmp_values(x, y))
        return self._mk(f, VoltType.TINYINT, a, b)

    def _cmp_node(self, node, op):
        return self.comparison(self.compile(node.this), self.compile(node.expression), op, node.sql())

    def c_EQ(self, node):
        return self._cmp_node(node, "=")

    def c_NEQ(self, node):
        return self._cmp_node(node, "<>")

    def c_LT(self, node):
        return self._cmp_node(node, "<")

    def c_LTE(self, node):
        return self._cmp_node(node, "<=")

    def c_GT(self, node):
        return self._cmp_node(node, ">")

    def c_GTE(self, node):
        return self._cmp_node(node, ">=")

    def c_And(self, node):
        a, b = self.compile(node.this), self.compile(node.expression)
        fa, fb = a.fn, b.fn

        def f(r, e):
            x = fa(r, e)
            if x is False:
                return False
            y = fb(r, e)
            if y is False:
                return False
            if x is None or y is None:
                return None
            return True
        return self._mk(f, VoltType.TINYINT, a, b)

    def c_Or(self, node):
        a, b = self.compile(node.this), self.compile(node.expression)
        fa, fb = a.fn, b.fn

        def f(r, e):
            x = fa(r, e)
            if x is True:
                return True
            y = fb(r, e)
            if y is True:
                return True
            if x is None or y is None:
                return None
            return False
        return self._mk(f, VoltType.TINYINT, a, b)

    def c_Not(self, node):
        a = self.compile(node.this)
        fa = a.fn
        return self._mk(lambda r, e: None if (v := fa(r, e)) is None else not v, VoltType.TINYINT, a)

    def c_Is(self, node):
        if not isinstance(node.expression, exp.Null):
            raise PlanningError(f"unsupported IS test: {node.sql()} (only IS [NOT] NULL)")
        a = self.compile(node.this)
        fa = a.fn
        return self._mk(lambda r, e: fa(r, e) is None, VoltType.TINYINT, a)

    def c_Between(self, node):
        x = self.compile(node.this)
        lo = self.comparison(x, self.compile(node.args["low"]), ">=", node.sql())
        hi = self.comparison(x, self.compile(node.args["high"]), "<=", node.sql())
        fl, fh = lo.fn, hi.fn

        def f(r, e):
            a = fl(r, e)
            if a is False:
                return False
            b = fh(r, e)
            if b is False:
                return False
            return None if a is None or b is None else True
        return self._mk(f, VoltType.TINYINT, lo, hi)

    def c_In(self, node):
        if node.args.get("query") is not None:
            raise PlanningError(f"unsupported: IN with a subquery ({node.sql()})")
        x = self.compile(node.this)
        items = [self.compile(i) for i in node.expressions]
        for it in items:
            self.comparison(x, it, "=", node.sql())   # type checks and parameter hints
        fx = x.fn
        if all(i.const for i in items):
            vals = [i.value() for i in items]
            if x.vtype is VoltType.TIMESTAMP:
                vals = [timestamp_micros(v) if isinstance(v, str) else v for v in vals]
            has_null = any(v is None for v in vals)
            try:
                vset = frozenset(v for v in vals if v is not None)
            except TypeError:
                raise PlanningError(f"bad IN list {node.sql()}") from None

            def f(r, e):
                v = fx(r, e)
                if v is None:
                    return None
                if v in vset:
                    return True
                return None if has_null else False
        else:
            fns = [i.fn for i in items]

            def f(r, e):
                v = fx(r, e)
                if v is None:
                    return None
                unknown = False
                for fn in fns:
                    w = fn(r, e)
                    if w is None:
                        unknown = True
                    elif _cmp_values(v, w) == 0:
                        return True
                return None if unknown else False
        return self._mk(f, VoltType.TINYINT, x, *items)

    def c_Like(self, node):
        return self._like(node, None)

    def c_Escape(self, node):
        inner = _unwrap(node.this)
        if not isinstance(inner, exp.Like):
            raise PlanningError(f"ESCAPE outside LIKE: {node.sql()}")
        esc = self.compile(node.expression)
        if not esc.const or not isinstance(esc.value(), str) or len(esc.value()) != 1:
            raise PlanningError("the ESCAPE of LIKE must be a one-character string literal")
        return self._like(inner, esc.value())

    def _like(self, node, escape):
        x = self.compile(node.this)
        p = self.compile(node.expression)
        self.hint(x, VoltType.STRING, widened=False)
        self.hint(p, VoltType.STRING, widened=False)
        for c in (x, p):
            if c.vtype is not None and c.vtype is not VoltType.STRING:
                raise PlanningError(f"LIKE needs VARCHAR operands, got {c.vtype.sql_name} in {node.sql()}")
        fx = x.fn
        neg = bool(node.args.get("negate"))
        if p.const:
            pv = p.value()
            rx = None if pv is None else like_regex(pv, escape)

            def f(r, e):
                v = fx(r, e)
                if v is None or rx is None:
                    return None
                return (rx.fullmatch(v) is None) if neg else (rx.fullmatch(v) is not None)
        else:
            fp = p.fn
            cache: dict = {}

            def f(r, e):
                v = fx(r, e)
                pv = fp(r, e)
                if v is None or pv is None:
                    return None
                rx = cache.get(pv)
                if rx is None:
                    rx = cache[pv] = like_regex(pv, escape)
                return (rx.fullmatch(v) is None) if neg else (rx.fullmatch(v) is not None)
        return self._mk(f, VoltType.TINYINT, x, p)

    # CASE, COALESCE, DECODE, CAST -----------------------------------------------------
    def _result_type(self, cs: list[CExpr], what: str) -> VoltType | None:
        types = [c.vtype for c in cs if c.vtype is not None]
        if not types:
            return None
        fams = {_family(t) for t in types}
        if len(fams) > 1:
            raise PlanningError(f"incompatible result types in {what}: "
                                + ", ".join(sorted({t.sql_name for t in types})))
        if fams == {"num"}:
            if VoltType.FLOAT in types:
                return VoltType.FLOAT
            if VoltType.DECIMAL in types:
                return VoltType.DECIMAL
            return VoltType.BIGINT if len(set(types)) > 1 else types[0]
        return types[0]

    def c_Case(self, node):
        base = self.compile(node.this) if node.this is not None else None
        conds, results = [], []
        for iff in node.args.get("ifs") or []:
            if base is not None:
                conds.append(self.comparison(base, self.compile(iff.this), "=", node.sql()))
            else:
                conds.append(self.compile(iff.this))
            results.append(self.compile(iff.args["true"]))
        default = self.compile(node.args["default"]) if node.args.get("default") is not None else None
        outs = results + ([default] if default else [])
        t = self._result_type(outs, "CASE")
        for o in outs:
            self.hint(o, t)
        pairs = [(c.fn, r.fn) for c, r in zip(conds, results)]
        fd = default.fn if default else None

        def f(r, e):
            for fc, fr in pairs:
                if fc(r, e) is True:
                    return fr(r, e)
            return fd(r, e) if fd else None
        return self._mk(f, t, *(conds + outs))

    def c_Coalesce(self, node):
        parts = [self.compile(node.this)] + [self.compile(x) for x in node.expressions]
        t = self._result_type(parts, "COALESCE")
        for p in parts:
            self.hint(p, t)
        fns = [p.fn for p in parts]

        def f(r, e):
            for fn in fns:
                v = fn(r, e)
                if v is not None:
                    return v
            return None
        return self._mk(f, t, *parts)

    def c_DecodeCase(self, node):
        args = [self.compile(x) for x in node.expressions]
        if len(args) < 3:
            raise PlanningError("DECODE needs at least 3 arguments")
        x, rest = args[0], args[1:]
        default = rest.pop() if len(rest) % 2 else None
        pairs = [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]
        for s, _ in pairs:
            self.hint(s, x.vtype)
        outs = [p[1] for p in pairs] + ([default] if default else [])
        t = self._result_type(outs, "DECODE")
        fx = x.fn
        fpairs = [(s.fn, v.fn) for s, v in pairs]
        fd = default.fn if default else None

        def f(r, e):
            v = fx(r, e)
            for fs, fv in fpairs:
                s = fs(r, e)
                if (v is None and s is None) or (v is not None and s is not None and _cmp_values(v, s) == 0):
                    return fv(r, e)
            return fd(r, e) if fd else None
        return self._mk(f, t, *args)

    def c_Cast(self, node):
        a = self.compile(node.this)
        dt = node.args["to"]
        name = dt.this.name if hasattr(dt.this, "name") else str(dt.this)
        tmap = {"INT": VoltType.INTEGER, "BIGINT": VoltType.BIGINT, "SMALLINT": VoltType.SMALLINT,
                "TINYINT": VoltType.TINYINT, "DOUBLE": VoltType.FLOAT, "FLOAT": VoltType.FLOAT,
                "VARCHAR": VoltType.STRING, "TEXT": VoltType.STRING, "CHAR": VoltType.STRING,
                "DECIMAL": VoltType.DECIMAL, "TIMESTAMP": VoltType.TIMESTAMP,
                "VARBINARY": VoltType.VARBINARY}
        t = tmap.get(name.upper())
        if t is None:
            raise PlanningError(f"unsupported CAST target type {dt.sql()}")
        fa = a.fn

        def f(r, e):
            v = fa(r, e)
            if v is None:
                return None
            if t in INTEGER_TYPES and isinstance(v, (float, decimal.Decimal)):
                v = int(v)
            if t is VoltType.STRING and isinstance(v, float):
                return repr(v)
            return coerce(t, v, what="CAST operand")
        return self._mk(f, t, a)

    # functions ----------------------------------------------------------------------
    def _num_fn(self, node, fn, keep_type=True, out=None):
        a = self.compile(node.this)
        self.hint(a, VoltType.FLOAT)
        if a.vtype is not None and a.vtype not in NUMERIC:
            raise PlanningError(f"{type(node).__name__.upper()} needs a numeric argument, got {a.vtype.sql_name}")
        fa = a.fn
        t = out or (widen(a.vtype) if a.vtype else None)
        return self._mk(lambda r, e: None if (v := fa(r, e)) is None else fn(v), t, a)

    def c_Abs(self, node):
        return self._num_fn(node, abs)

    def c_Ceil(self, node):
        def ceil(v):
            if isinstance(v, int):
                return v
            if isinstance(v, float):
                return float(math.ceil(v))
            return decimal_value(v.to_integral_value(rounding=decimal.ROUND_CEILING))
        return self._num_fn(node, ceil)

    def c_Floor(self, node):
        def floor(v):
            if isinstance(v, int):
                return v
            if isinstance(v, float):
                return float(math.floor(v))
            return decimal_value(v.to_integral_value(rounding=decimal.ROUND_FLOOR))
        return self._num_fn(node, floor)

    def c_Round(self, node):
        a = self.compile(node.this)
        d = self.compile(node.args["decimals"]) if node.args.get("decimals") is not None else const_expr(0)
        self.hint(a, VoltType.FLOAT)
        self.hint(d, VoltType.INTEGER)
        fa, fd = a.fn, d.fn

        def f(r, e):
            v, n = fa(r, e), fd(r, e)
            if v is None or n is None:
                return None
            q = decimal.Decimal(1).scaleb(-int(n))
            if isinstance(v, int):
                return int(decimal.Decimal(v).quantize(q, rounding=decimal.ROUND_HALF_UP)) if n < 0 else v
            dv = v if isinstance(v, decimal.Decimal) else decimal.Decimal(repr(v))
            rv = dv.quantize(q, rounding=decimal.ROUND_HALF_UP, context=_DEC_CTX)
            return decimal_value(rv) if isinstance(v, decimal.Decimal) else float(rv)
        return self._mk(f, widen(a.vtype) if a.vtype else None, a, d)

    def c_Pow(self, node):
        a, b = self.compile(node.this), self.compile(node.expression)
        self.hint(a, VoltType.FLOAT)
        self.hint(b, VoltType.FLOAT)
        _arith_type("^", a.vtype, b.vtype, "POWER")
        fa, fb = a.fn, b.fn

        def f(r, e):
            x, y = fa(r, e), fb(r, e)
            if x is None or y is None:
                return None
            try:
                v = math.pow(float(x), float(y))
            except (ValueError, OverflowError):
                raise SQLError(f"invalid POWER({x}, {y})") from None
            return v
        return self._mk(f, VoltType.FLOAT, a, b)

    def c_Sqrt(self, node):
        def sq(v):
            if v < 0:
                raise SQLError(f"SQRT of a negative number {v}")
            return math.sqrt(float(v))
        return self._num_fn(node, sq, out=VoltType.FLOAT)

    def _str_fn(self, node, fn, out=VoltType.STRING):
        a = self.compile(node.this)
        self.hint(a, VoltType.STRING, widened=False)
        if a.vtype is not None and a.vtype is not VoltType.STRING:
            raise PlanningError(f"{type(node).__name__.upper()} needs a VARCHAR argument, got {a.vtype.sql_name}")
        fa = a.fn
        return self._mk(lambda r, e: None if (v := fa(r, e)) is None else fn(v), out, a)

    def c_Lower(self, node):
        return self._str_fn(node, str.lower)

    def c_Upper(self, node):
        return self._str_fn(node, str.upper)

    def c_Length(self, node):
        return self._str_fn(node, len, VoltType.INTEGER)

    def c_Trim(self, node):
        pos = (node.args.get("position") or "BOTH").upper()
        chars = self.compile(node.expression) if node.args.get("expression") is not None else const_expr(" ")
        if not chars.const:
            raise PlanningError("TRIM characters must be a literal")
        cv = chars.value()
        if pos == "LEADING":
            return self._str_fn(node, lambda s: s.lstrip(cv))
        if pos == "TRAILING":
            return self._str_fn(node, lambda s: s.rstrip(cv))
        return self._str_fn(node, lambda s: s.strip(cv))

    def c_Substring(self, node):
        s = self.compile(node.this)
        st = self.compile(node.args["start"]) if node.args.get("start") is not None else const_expr(1)
        ln = self.compile(node.args["length"]) if node.args.get("length") is not None else None
        self.hint(s, VoltType.STRING, widened=False)
        self.hint(st, VoltType.INTEGER)
        if ln is not None:
            self.hint(ln, VoltType.INTEGER)
        if s.vtype is not None and s.vtype is not VoltType.STRING:
            raise PlanningError(f"SUBSTRING needs a VARCHAR argument, got {s.vtype.sql_name}")
        fs, fst = s.fn, st.fn
        fl = ln.fn if ln else None

        def f(r, e):
            v, a = fs(r, e), fst(r, e)
            if v is None or a is None:
                return None
            a = int(a)
            if fl is None:
                return v[max(a, 1) - 1:]
            n = fl(r, e)
            if n is None:
                return None
            n = int(n)
            if n < 0:
                raise SQLError("negative SUBSTRING length")
            end = a + n       # 1-based exclusive end
            start = max(a, 1)
            return v[start - 1:max(end - 1, start - 1)]
        return self._mk(f, VoltType.STRING, s, st, *([ln] if ln else []))

    def c_Anonymous(self, node):
        name = node.name.upper()
        args = node.expressions
        if name in ("NOW", "CURRENT_TIMESTAMP") and not args:
            return self._now()
        if name == "MOD" and len(args) == 2:
            return self._binary_arith(exp.Mod(this=args[0], expression=args[1]), "%")
        if name == "CHAR_LENGTH" and len(args) == 1:
            return self.c_Length(exp.Length(this=args[0]))
        if name in ("CEILING",) and len(args) == 1:
            return self.c_Ceil(exp.Ceil(this=args[0]))
        raise PlanningError(f"unsupported function {name}({len(args)} argument(s))")

    # aggregates ---------------------------------------------------------------------
    def _aggregate(self, node) -> CExpr:
        sc = self.scope
        key = norm_key(node)
        for i, a in enumerate(sc.aggs):
            if a.key == key:
                return self._agg_ref(i, a.vtype)
        arg = node.this
        distinct = False
        if isinstance(arg, exp.Distinct):
            distinct = True
            if len(arg.expressions) != 1:
                raise PlanningError(f"aggregate with DISTINCT takes one argument: {node.sql()}")
            arg = arg.expressions[0]
        fname = type(node).__name__.upper()
        sub = Compiler(Scope(sc.sources, sc.param_types, sc.param_coerce))
        if isinstance(arg, exp.Star):
            if fname != "COUNT":
                raise PlanningError(f"{fname}(*) is not valid")
            spec = AggSpec("COUNT_STAR", None, False, VoltType.BIGINT, key)
        else:
            if arg is None:
                raise PlanningError(f"{fname} needs an argument")
            if is_aggregate(arg):
                raise PlanningError(f"nested aggregate in {node.sql()}")
            c = sub.compile(arg)
            if fname == "COUNT":
                t = VoltType.BIGINT
            else:
                if fname in ("SUM", "AVG"):
                    sub.hint(c, VoltType.FLOAT)
                    if c.vtype is not None and c.vtype not in NUMERIC:
                        raise PlanningError(f"{fname} needs a numeric argument, got {c.vtype.sql_name}")
                if fname == "SUM":
                    t = widen(c.vtype) if c.vtype else VoltType.FLOAT
                else:
                    t = c.vtype if c.vtype else VoltType.FLOAT
            spec = AggSpec(fname, c, distinct, t, key)
        sc.aggs.append(spec)
        return self._agg_ref(len(sc.aggs) - 1, spec.vtype)

    def _agg_ref(self, i, t):
        ng = len(self.scope.group_keys)
        return CExpr(lambda r, e, j=ng + i: r[j], t, frozenset(), has_agg=True)


def sc_resolve(scope: Scope, name: str, qualifier):
    return scope.resolve(name, qualifier)
