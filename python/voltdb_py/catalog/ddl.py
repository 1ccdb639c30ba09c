# SPDX-License-Identifier: AGPL-3.0-or-later
"""The DDL compiler: VoltDB schema statements -> a new Catalog.

``compile_ddl(catalog, text, class_loader=None)`` applies one batch of DDL statements to a
deep copy of ``catalog`` and returns it (version + 1). If any statement fails, a
``DDLError`` or ``CatalogError`` naming the statement, the object and the problem is raised
and nothing changes. Rules that depend on several statements (partitioning, unique indexes
of partitioned tables, partitioned procedures) are checked once the whole batch has been
applied, so statement order inside a batch does not matter for them (as in VoltDB).

Supported: CREATE TABLE, PARTITION TABLE, CREATE [UNIQUE|ASSUMEUNIQUE] INDEX, CREATE VIEW
(single-table materialized views with COUNT/SUM/MIN/MAX and GROUP BY), CREATE PROCEDURE
(AS <one SQL statement> or FROM CLASS), PARTITION PROCEDURE, DROP TABLE/INDEX/VIEW/PROCEDURE
[IF EXISTS] [CASCADE], ALTER TABLE ADD/DROP COLUMN, ADD/DROP CONSTRAINT, DROP PRIMARY KEY.
Statements VoltDB accepts but voltdb_py does not implement (EXPORT TABLE, CREATE STREAM,
CREATE ROLE, DR TABLE, SET DR, CREATE FUNCTION, CREATE TASK, ...) are skipped with a
``VoltDBCompatibilityWarning``.

sqlcmd directives are not DDL. ``split_script(text)`` cuts a sqlcmd script into
``(kind, payload)`` items for the sqlcmd tool. ``compile_ddl`` tolerates them: the contents
of ``file -inlinebatch X`` ... ``X`` blocks are compiled as part of the batch, ``LOAD
CLASSES`` / ``REMOVE CLASSES`` lines are skipped (Python classes are found by the
class loader, not loaded from jars), and ``file <path>`` raises DDLError (read the file
yourself, or use the sqlcmd tool).

Names of tables, columns, indexes and views are folded to upper case. Procedure names keep
the case they are written with (VoltDB calls them by exact name) but two procedures whose
names differ only in case are refused, and DROP / PARTITION PROCEDURE match without case.
"""

from __future__ import annotations

import copy
import decimal
import importlib
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from voltdb_py.catalog.model import Catalog, Column, Index, Procedure, Table, ViewDef
from voltdb_py.errors import CatalogError, DDLError, TypeMismatchError, ValueOutOfRangeError
from voltdb_py.types import INTEGER_TYPES, VoltType, coerce

__all__ = [
    "VoltDBCompatibilityWarning", "compile_ddl", "split_script", "split_statements",
    "CatalogChanges", "catalog_changes", "MAX_VALUE_LENGTH", "DEFAULT_VARCHAR_SIZE",
    "MAX_COLUMNS", "PARTITION_TYPES",
]


class VoltDBCompatibilityWarning(UserWarning):
    """A statement VoltDB accepts was skipped because voltdb_py does not implement it."""


MAX_VALUE_LENGTH = 1048576        # largest VARCHAR/VARBINARY size (VoltDB's limit)
DEFAULT_VARCHAR_SIZE = MAX_VALUE_LENGTH  # size of VARCHAR/VARBINARY written without one
MAX_COLUMNS = 1024                # VoltDB's limit of columns per table
PARTITION_TYPES = frozenset({VoltType.TINYINT, VoltType.SMALLINT, VoltType.INTEGER,
                             VoltType.BIGINT, VoltType.STRING, VoltType.VARBINARY})
_MAX_ID = 0xFFFE                  # 0xFFFF is reserved for store metadata

ClassLoader = Callable[[str], Any]

# --------------------------------------------------------------------------- splitting


class Statement(NamedTuple):
    """One statement of a script: its text (without the ';') and its first line (1-based)."""

    text: str
    line: int


def _skip_quoted(text: str, i: int, quote: str) -> int:
    """Return the index just after the quoted run starting at text[i] (doubled quotes escape)."""
    n = len(text)
    i += 1
    while i < n:
        if text[i] == quote:
            if i + 1 < n and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    raise DDLError(f"unterminated {quote}-quoted text starting at line "
                   f"{text.count(chr(10), 0, i) + 1}")


def _comment_end(text: str, i: int) -> int | None:
    """The index just past a -- or /* */ comment starting at i, or None if none starts there."""
    if text.startswith("--", i):
        j = text.find("\n", i)
        return len(text) if j < 0 else j + 1
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        if j < 0:
            raise DDLError(f"unterminated /* comment at line {text.count(chr(10), 0, i) + 1}")
        return j + 2
    return None


def _skip_space_and_comments(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif (end := _comment_end(text, i)) is not None:
            i = end
        else:
            break
    return i


def _scan_statement(text: str, i: int) -> int:
    """From i (start of a statement), return the index of its ';' or len(text)."""
    n = len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            i = _skip_quoted(text, i, c)
        elif (end := _comment_end(text, i)) is not None:
            i = end
        elif c == ";":
            return i
        else:
            i += 1
    return n


def split_statements(text: str) -> list[Statement]:
    """Split SQL text at ';' outside quotes and comments; empty statements are dropped."""
    out: list[Statement] = []
    i, n = 0, len(text)
    while True:
        i = _skip_space_and_comments(text, i)
        if i >= n:
            return out
        if text[i] == ";":
            i += 1
            continue
        end = _scan_statement(text, i)
        body = text[i:end].rstrip()
        out.append(Statement(body, text.count("\n", 0, i) + 1))
        i = end + 1


_RE_INLINEBATCH = re.compile(r"file\s+-inlinebatch\s+(\S+)[ \t]*;?[ \t]*(?:\n|$)", re.I)
_RE_FILE = re.compile(r"file\s+(-batch\s+)?([^\s;]+)[ \t]*;?[ \t]*(?:\n|$)", re.I)
_RE_CLASSES = re.compile(r"(load|remove)\s+classes\s+([^\s;]+)[ \t]*;?[ \t]*(?:--[^\n]*)?(?:\n|$)",
                         re.I)


def split_script(text: str) -> list[tuple[str, str]]:
    """Cut a sqlcmd script into items ``(kind, payload)``, in order.

    kinds:
      - ``"sql"``: one statement (payload: its text without ';').
      - ``"batch"``: the text between ``file -inlinebatch X`` and a line ``X`` (to be run as
        one DDL batch; split it with split_statements).
      - ``"load_classes"`` / ``"remove_classes"``: the jar path / class pattern.
      - ``"file"`` / ``"file_batch"``: the path of ``file [-batch] <path>``.

    Directives are recognized only where a statement starts.
    """
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        i = _skip_space_and_comments(text, i)
        if i >= n:
            return out
        if text[i] == ";":
            i += 1
            continue
        m = _RE_INLINEBATCH.match(text, i)
        if m:
            term = m.group(1)
            start = m.end()
            tm = re.compile(r"^[ \t]*" + re.escape(term) + r"[ \t]*;?[ \t]*$", re.M).search(text, start)
            if tm is None:
                raise DDLError(f"file -inlinebatch {term} at line {text.count(chr(10), 0, i) + 1}:"
                               f" no closing line {term!r}")
            out.append(("batch", text[start:tm.start()]))
            i = tm.end()
            continue
        m = _RE_CLASSES.match(text, i)
        if m:
            out.append((m.group(1).lower() + "_classes", m.group(2)))
            i = m.end()
            continue
        m = _RE_FILE.match(text, i)
        if m:
            out.append(("file_batch" if m.group(1) else "file", m.group(2)))
            i = m.end()
            continue
        end = _scan_statement(text, i)
        out.append(("sql", text[i:end].rstrip()))
        i = end + 1


# --------------------------------------------------------------------------- tokens

_TOKEN_RE = re.compile(r"""
  (?P<ws>\s+)
| (?P<comment>--[^\n]*|/\*.*?\*/)
| (?P<hex>[xX]'[^']*')
| (?P<string>'(?:[^']|'')*')
| (?P<qident>"(?:[^"]|"")*")
| (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
| (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
| (?P<punct><>|!=|<=|>=|\|\||[(),;.*=<>+\-/?%:\[\]{}#])
""", re.S | re.X)


class Tok(NamedTuple):
    kind: str      # ident, qident, string, hex, number, punct, end
    value: str     # identifiers upper-cased (qident unquoted), strings unquoted
    raw: str
    pos: int


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(text)
    while i < n:
        m = _TOKEN_RE.match(text, i)
        if not m:
            raise DDLError(f"unexpected character {text[i]!r}")
        kind = m.lastgroup
        raw = m.group()
        if kind == "ident":
            toks.append(Tok(kind, raw.upper(), raw, i))
        elif kind == "qident":
            toks.append(Tok(kind, raw[1:-1].replace('""', '"').upper(), raw, i))
        elif kind == "string":
            toks.append(Tok(kind, raw[1:-1].replace("''", "'"), raw, i))
        elif kind == "hex":
            toks.append(Tok(kind, raw[2:-1], raw, i))
        elif kind in ("number", "punct"):
            toks.append(Tok(kind, raw, raw, i))
        i = m.end()
    toks.append(Tok("end", "", "", n))
    return toks


class _Parser:
    """A cursor over the tokens of one statement."""

    def __init__(self, text: str, fail: Callable[[str], Exception]):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.fail = fail

    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.peek()
        if t.kind != "end":
            self.i += 1
        return t

    def at_end(self) -> bool:
        return self.peek().kind == "end"

    def is_word(self, *words: str, k: int = 0) -> bool:
        t = self.peek(k)
        return t.kind == "ident" and t.value in words

    def accept(self, *seq: str) -> bool:
        """Consume the keyword sequence seq if it comes next."""
        for k, w in enumerate(seq):
            if not self.is_word(w, k=k):
                return False
        self.i += len(seq)
        return True

    def expect(self, *seq: str) -> None:
        if not self.accept(*seq):
            raise self.fail(f"expected {' '.join(seq)} but found {self.describe()}")

    def accept_punct(self, p: str) -> bool:
        t = self.peek()
        if t.kind == "punct" and t.value == p:
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        if not self.accept_punct(p):
            raise self.fail(f"expected {p!r} but found {self.describe()}")

    def describe(self) -> str:
        t = self.peek()
        return "the end of the statement" if t.kind == "end" else repr(t.raw)

    def name(self, what: str) -> str:
        t = self.peek()
        if t.kind in ("ident", "qident"):
            self.i += 1
            return t.value
        raise self.fail(f"expected {what} but found {self.describe()}")

    def raw_name(self, what: str) -> str:
        """A name with its case kept (procedure names); dotted names joined."""
        t = self.peek()
        if t.kind not in ("ident", "qident"):
            raise self.fail(f"expected {what} but found {self.describe()}")
        self.i += 1
        parts = [t.raw if t.kind == "ident" else t.raw[1:-1]]
        while self.peek().kind == "punct" and self.peek().value == "." and \
                self.peek(1).kind in ("ident", "qident"):
            self.i += 1
            t = self.next()
            parts.append(t.raw if t.kind == "ident" else t.raw[1:-1])
        return ".".join(parts)

    def integer(self, what: str) -> int:
        t = self.peek()
        if t.kind == "number" and t.value.isdigit():
            self.i += 1
            return int(t.value)
        raise self.fail(f"expected {what} (an integer) but found {self.describe()}")

    def name_list(self, what: str) -> list[str]:
        self.expect_punct("(")
        names = [self.name(what)]
        while self.accept_punct(","):
            names.append(self.name(what))
        if not self.accept_punct(")"):
            raise self.fail(f"expected ',' or ')' in the list of {what}s but found "
                            f"{self.describe()} (only plain column names are supported)")
        return names

    def rest(self) -> str:
        """The statement text from the current token on."""
        return self.text[self.peek().pos:].strip()

    def expect_end(self) -> None:
        if not self.at_end():
            raise self.fail(f"unexpected {self.describe()}")


# --------------------------------------------------------------------------- changes


@dataclass
class CatalogChanges:
    """What a DDL batch changed, in terms of the ids the stores key data by."""

    created_tables: list[str] = field(default_factory=list)        # new tables and views
    dropped_table_ids: list[int] = field(default_factory=list)
    altered_tables: list[tuple[str, int, int]] = field(default_factory=list)  # name, old, new id
    created_index_ids: list[int] = field(default_factory=list)
    dropped_index_ids: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.created_tables or self.dropped_table_ids or self.altered_tables
                    or self.created_index_ids or self.dropped_index_ids)


def catalog_changes(old: Catalog, new: Catalog) -> CatalogChanges:
    """Compare two catalogs (new made from old by compile_ddl) by table and index ids.

    An altered table (``altered_from`` set) appears in altered_tables, its old id in
    dropped_table_ids and the old/new ids of its indexes in dropped/created_index_ids.
    """
    ch = CatalogChanges()
    old_ids = {t.table_id: t for t in old.tables.values()}
    new_ids = {t.table_id: t for t in new.tables.values()}
    for t in new.tables.values():
        if t.altered_from is not None:
            ch.altered_tables.append((t.name, t.altered_from, t.table_id))
        elif t.table_id not in old_ids:
            ch.created_tables.append(t.name)
    ch.dropped_table_ids = sorted(i for i in old_ids if i not in new_ids)
    old_idx = {ix.index_id for t in old.tables.values() for ix in t.indexes}
    new_idx = {ix.index_id for t in new.tables.values() for ix in t.indexes}
    ch.created_index_ids = sorted(new_idx - old_idx)
    ch.dropped_index_ids = sorted(old_idx - new_idx)
    return ch


# --------------------------------------------------------------------------- compiler

_IGNORED = [
    ("EXPORT",), ("DR", "TABLE"), ("SET", "DR"), ("CREATE", "STREAM"), ("DROP", "STREAM"),
    ("ALTER", "STREAM"), ("CREATE", "ROLE"), ("DROP", "ROLE"), ("CREATE", "FUNCTION"),
    ("DROP", "FUNCTION"), ("CREATE", "AGGREGATE"), ("CREATE", "TASK"), ("DROP", "TASK"),
    ("ALTER", "TASK"), ("CREATE", "TOPIC"), ("DROP", "TOPIC"), ("ALTER", "TOPIC"),
    ("IMPORT", "CLASS"), ("ALTER", "EXPORT"),
]


def _default_loader(class_path: str) -> Any:
    module, _, name = class_path.rpartition(".")
    if not module:
        raise ImportError(f"{class_path!r} has no module part")
    return getattr(importlib.import_module(module), name)


def compile_ddl(catalog: Catalog, text: str, class_loader: ClassLoader | None = None) -> Catalog:
    """Apply the DDL statements of text to a copy of catalog; return the copy (version + 1).

    class_loader(class_path) must return the class of a ``CREATE PROCEDURE ... FROM CLASS``
    or raise; without one, ``module.Class`` paths are imported with importlib.

    :raises DDLError: a statement is malformed or breaks a schema rule.
    :raises CatalogError: a name is unknown or already used, or a class cannot be loaded.
    """
    b = _Batch(catalog, class_loader or _default_loader)
    for kind, payload in split_script(text):
        if kind == "sql":
            b.run(payload)
        elif kind == "batch":
            for st in split_statements(payload):
                b.run(st.text)
        elif kind in ("load_classes", "remove_classes"):
            continue
        else:
            raise DDLError(f"sqlcmd directive 'file {payload}' cannot be compiled as DDL: "
                           "read the file and pass its text, or use the sqlcmd tool")
    b.finish()
    return b.cat


class _Batch:
    def __init__(self, orig: Catalog, loader: ClassLoader):
        self.orig = orig
        self.cat = copy.deepcopy(orig)
        self.loader = loader
        for t in self.cat.tables.values():
            t.altered_from = None
        self.orig_ids = {name: t.table_id for name, t in orig.tables.items()}
        self.created: set[str] = set()     # tables/views created by this batch
        self.reided: set[str] = set()      # original tables given a new id by this batch
        self.stmt = ""
        self.n = 0

    # -- helpers -------------------------------------------------------------------

    def where(self) -> str:
        s = " ".join(self.stmt.split())
        if len(s) > 80:
            s = s[:77] + "..."
        return f"statement {self.n} ({s})"

    def constraint_kind(self, p: _Parser, where: str) -> str:
        """Read PRIMARY KEY, UNIQUE or ASSUMEUNIQUE: "PK", "UNIQUE" or "ASSUMEUNIQUE"."""
        if p.accept("PRIMARY", "KEY"):
            return "PK"
        if p.accept("UNIQUE"):
            return "UNIQUE"
        if p.accept("ASSUMEUNIQUE"):
            return "ASSUMEUNIQUE"
        raise self.err(f"{where}expected PRIMARY KEY, UNIQUE or ASSUMEUNIQUE, found "
                       f"{p.describe()}")

    def err(self, msg: str) -> DDLError:
        return DDLError(f"{self.where()}: {msg}")

    def cerr(self, msg: str) -> CatalogError:
        return CatalogError(f"{self.where()}: {msg}")

    def new_id(self) -> int:
        i = self.cat.next_id
        if i > _MAX_ID:
            raise self.err("no more table/index ids (the catalog has used all 65534)")
        self.cat.next_id = i + 1
        return i

    def table(self, name: str, *, view_ok: bool = True) -> Table:
        t = self.cat.tables.get(name)
        if t is None:
            raise self.cerr(f"table {name} does not exist")
        if t.is_view and not view_ok:
            raise self.err(f"{name} is a view, not a table")
        return t

    def check_column(self, t: Table, col: str, what: str = "column") -> Column:
        try:
            return t.column(col)
        except KeyError:
            kind = "view" if t.is_view else "table"
            raise self.cerr(f"{what} {col} does not exist in {kind} {t.name}") from None

    def all_index_names(self) -> dict[str, Table]:
        return {ix.name: t for t in self.cat.tables.values() for ix in t.indexes}

    def unique_index_name(self, base: str) -> str:
        used = self.all_index_names()
        name, k = base, 2
        while name in used:
            name = f"{base}_{k}"
            k += 1
        return name

    def find_procedure(self, name: str) -> str | None:
        up = name.upper()
        for key in self.cat.procedures:
            if key.upper() == up:
                return key
        return None

    def reid(self, t: Table) -> None:
        """Give an original table (and its indexes) new ids: its shape changed."""
        if t.name in self.created or t.name in self.reided:
            return
        old = self.orig_ids.get(t.name)
        if old is None or old != t.table_id:
            return
        t.altered_from = old
        t.table_id = self.new_id()
        for ix in t.indexes:
            ix.index_id = self.new_id()
        self.reided.add(t.name)

    # -- dispatch ------------------------------------------------------------------

    def run(self, text: str) -> None:
        self.n += 1
        self.stmt = text
        try:
            p = _Parser(text, self.err)
        except DDLError as e:
            raise self.err(str(e)) from None
        for seq in _IGNORED:
            if all(p.is_word(w, k=k) for k, w in enumerate(seq)):
                warnings.warn(f"{self.where()}: {' '.join(seq)} is accepted by VoltDB but not "
                              "implemented by voltdb_py; the statement was skipped",
                              VoltDBCompatibilityWarning, stacklevel=3)
                return
        try:
            if p.accept("CREATE", "TABLE"):
                self.create_table(p)
            elif p.accept("CREATE", "VIEW"):
                self.create_view(p)
            elif p.accept("CREATE", "PROCEDURE"):
                self.create_procedure(p)
            elif p.is_word("CREATE") and (p.is_word("INDEX", k=1) or (
                    p.is_word("UNIQUE", "ASSUMEUNIQUE", k=1) and p.is_word("INDEX", k=2))):
                p.next()
                self.create_index(p)
            elif p.accept("PARTITION", "TABLE"):
                self.partition_table(p)
            elif p.accept("PARTITION", "PROCEDURE"):
                self.partition_procedure(p)
            elif p.accept("DROP"):
                self.drop(p)
            elif p.accept("ALTER", "TABLE"):
                self.alter_table(p)
            else:
                raise self.err("unknown or unsupported DDL statement")
        except (TypeMismatchError, ValueOutOfRangeError) as e:
            raise self.err(str(e)) from None

    # -- CREATE TABLE ----------------------------------------------------------------

    def parse_type(self, p: _Parser, col: str) -> tuple[VoltType, int, bool]:
        t = p.peek()
        if t.kind != "ident":
            raise self.err(f"column {col}: expected a type but found {p.describe()}")
        p.next()
        tname = t.value
        if tname == "DOUBLE":
            p.accept("PRECISION")
        if tname in ("GEOGRAPHY", "GEOGRAPHY_POINT", "BOOLEAN", "CHAR", "CHARACTER", "TEXT"):
            raise self.err(f"column {col}: type {tname} is not supported by voltdb_py")
        try:
            vt = VoltType.from_sql_name(tname)
        except TypeMismatchError:
            raise self.err(f"column {col}: unknown type {t.raw}") from None
        if vt is VoltType.NULL:
            raise self.err(f"column {col}: unknown type {t.raw}")
        size, in_bytes = 0, False
        if vt in (VoltType.STRING, VoltType.VARBINARY):
            size = DEFAULT_VARCHAR_SIZE
            if p.accept_punct("("):
                size = p.integer(f"the size of column {col}")
                if p.accept("BYTES"):
                    if vt is VoltType.VARBINARY:
                        raise self.err(f"column {col}: BYTES applies to VARCHAR only")
                    in_bytes = True
                p.expect_punct(")")
            if not 1 <= size <= MAX_VALUE_LENGTH:
                raise self.err(f"column {col}: size {size} of {vt.sql_name} is out of the "
                               f"range 1..{MAX_VALUE_LENGTH}")
        elif vt is VoltType.DECIMAL:
            if p.accept_punct("("):
                prec = p.integer("the precision of DECIMAL")
                scale = p.integer("the scale of DECIMAL") if p.accept_punct(",") else 0
                p.expect_punct(")")
                if (prec, scale) != (38, 12):
                    raise self.err(f"column {col}: DECIMAL({prec},{scale}) is not supported: "
                                   "VoltDB's DECIMAL is always DECIMAL(38,12)")
        elif p.peek().kind == "punct" and p.peek().value == "(":
            raise self.err(f"column {col}: type {vt.sql_name} takes no size")
        return vt, size, in_bytes

    def parse_default(self, p: _Parser, c: Column) -> None:
        neg = False
        if p.accept_punct("-"):
            neg = True
        elif p.accept_punct("+"):
            pass
        t = p.next()
        now = False
        if t.kind == "ident" and t.value == "NULL" and not neg:
            value = None
        elif t.kind == "ident" and t.value in ("NOW", "CURRENT_TIMESTAMP") and not neg:
            if p.accept_punct("("):
                p.expect_punct(")")
            if c.vtype is not VoltType.TIMESTAMP:
                raise self.err(f"column {c.name}: DEFAULT {t.value} needs a TIMESTAMP column")
            now, value = True, None
        elif t.kind == "ident" and t.value in ("TRUE", "FALSE") and not neg:
            value = 1 if t.value == "TRUE" else 0
        elif t.kind == "number":
            txt = ("-" if neg else "") + t.value
            value = int(txt) if re.fullmatch(r"-?\d+", txt) else decimal.Decimal(txt)
            if c.vtype is VoltType.FLOAT:
                value = float(value)
        elif t.kind == "string" and not neg:
            value = t.value
        elif t.kind == "hex" and not neg:
            try:
                value = bytes.fromhex(t.value)
            except ValueError:
                raise self.err(f"column {c.name}: bad hex literal {t.raw}") from None
        else:
            raise self.err(f"column {c.name}: DEFAULT must be a literal, NULL or NOW; found "
                           f"{t.raw or 'nothing'!r}")
        if now:
            c.has_default, c.default, c.default_now = True, None, True
            return
        if t.kind == "hex" and c.vtype is not VoltType.VARBINARY:
            raise self.err(f"column {c.name}: a hex literal is not a {c.vtype.sql_name} value")
        try:
            v = coerce(c.vtype, value, c.size, c.in_bytes, what=f"DEFAULT of column {c.name}")
        except (TypeMismatchError, ValueOutOfRangeError) as e:
            raise self.err(str(e)) from None
        c.has_default, c.default, c.default_now = True, v, False

    def parse_column(self, p: _Parser, table: str, cons: list) -> Column:
        """Parse a column definition; column constraints are appended to cons."""
        name = p.name("a column name")
        vt, size, in_bytes = self.parse_type(p, name)
        c = Column(name, vt, size, in_bytes)
        seen_null: str | None = None
        while True:
            if p.accept("NOT", "NULL"):
                if seen_null == "NULL":
                    raise self.err(f"column {name}: both NULL and NOT NULL")
                c.nullable, seen_null = False, "NOT NULL"
            elif p.accept("NULL"):
                if seen_null == "NOT NULL":
                    raise self.err(f"column {name}: both NULL and NOT NULL")
                seen_null = "NULL"
            elif p.accept("DEFAULT"):
                if c.has_default:
                    raise self.err(f"column {name}: DEFAULT given twice")
                self.parse_default(p, c)
            elif p.is_word("CONSTRAINT", "PRIMARY", "UNIQUE", "ASSUMEUNIQUE"):
                cname = p.name("a constraint name") if p.accept("CONSTRAINT") else None
                if p.accept("PRIMARY", "KEY"):
                    cons.append((cname, "PK", [name]))
                elif p.accept("UNIQUE"):
                    cons.append((cname, "UNIQUE", [name]))
                elif p.accept("ASSUMEUNIQUE"):
                    cons.append((cname, "ASSUMEUNIQUE", [name]))
                else:
                    raise self.err(f"column {name}: expected PRIMARY KEY, UNIQUE or "
                                   f"ASSUMEUNIQUE after CONSTRAINT, found {p.describe()}")
            elif p.accept("REFERENCES"):
                p.name("a table name")
                if p.peek().kind == "punct" and p.peek().value == "(":
                    p.name_list("column")
                warnings.warn(f"{self.where()}: column {name}: REFERENCES (foreign keys) are "
                              "not enforced by VoltDB; ignored", VoltDBCompatibilityWarning,
                              stacklevel=5)
            else:
                break
        if c.has_default and c.default is None and not c.default_now and not c.nullable:
            raise self.err(f"column {name}: DEFAULT NULL on a NOT NULL column")
        return c

    def add_constraint(self, t: Table, cname: str | None, kind: str, cols: list[str]) -> Index:
        for col in cols:
            self.check_column(t, col)
        if len(set(cols)) != len(cols):
            raise self.err(f"{kind} of table {t.name} lists a column twice: {', '.join(cols)}")
        if kind == "PK":
            if t.primary_key is not None:
                raise self.err(f"table {t.name} has more than one PRIMARY KEY")
            t.primary_key = list(cols)
            for col in cols:
                t.column(col).nullable = False
        if cname is None:
            tag = {"PK": "PK", "UNIQUE": "CT", "ASSUMEUNIQUE": "CT"}[kind]
            base = f"VOLTDB_AUTOGEN_IDX_{tag}_{t.name}_{'_'.join(cols)}"
            cname = base
            used = {ix.constraint for ix in t.indexes}
            k = 2
            while cname in used:
                cname = f"{base}_{k}"
                k += 1
            ixname = self.unique_index_name(base)
        else:
            if any(ix.constraint == cname for x in self.cat.tables.values() for ix in x.indexes):
                raise self.cerr(f"constraint {cname} already exists")
            ixname = self.unique_index_name(f"VOLTDB_AUTOGEN_CONSTRAINT_IDX_{cname}")
        ix = Index(ixname, self.new_id(), t.name, list(cols),
                   unique=kind in ("PK", "UNIQUE"), assume_unique=kind == "ASSUMEUNIQUE",
                   primary_key=kind == "PK", from_constraint=True, constraint=cname)
        t.indexes.append(ix)
        return ix

    def create_table(self, p: _Parser) -> None:
        if p.is_word("IF") and p.is_word("NOT", k=1):
            raise self.err("CREATE TABLE IF NOT EXISTS is not VoltDB syntax")
        name = p.name("a table name")
        if name in self.cat.tables:
            raise self.cerr(f"table {name} already exists")
        p.expect_punct("(")
        cols: list[Column] = []
        cons: list[tuple[str | None, str, list[str]]] = []
        while True:
            if p.is_word("CONSTRAINT", "PRIMARY", "UNIQUE", "ASSUMEUNIQUE", "LIMIT"):
                if p.accept("LIMIT", "PARTITION", "ROWS"):
                    p.integer("the row limit")
                    while not (p.at_end() or (p.peek().kind == "punct" and p.peek().value in ",)")):
                        p.next()
                    warnings.warn(f"{self.where()}: LIMIT PARTITION ROWS is not implemented "
                                  "by voltdb_py; ignored", VoltDBCompatibilityWarning, stacklevel=4)
                else:
                    cname = p.name("a constraint name") if p.accept("CONSTRAINT") else None
                    kind = self.constraint_kind(p, f"table {name}: ")
                    cons.append((cname, kind, p.name_list("column")))
            else:
                c = self.parse_column(p, name, cons)
                if any(x.name == c.name for x in cols):
                    raise self.cerr(f"table {name} has two columns named {c.name}")
                cols.append(c)
            if p.accept_punct(","):
                if p.peek().kind == "punct" and p.peek().value == ")":
                    p.next()      # VoltDB tolerates a trailing comma
                    break
                continue
            if p.accept_punct(")"):
                break
            raise self.err(f"table {name}: expected ',' or ')' but found {p.describe()}")
        if not cols:
            raise self.err(f"table {name} has no columns")
        if len(cols) > MAX_COLUMNS:
            raise self.err(f"table {name} has {len(cols)} columns; the limit is {MAX_COLUMNS}")
        self.table_trailer(p, name)
        t = Table(name, self.new_id(), cols)
        self.cat.tables[name] = t
        self.created.add(name)
        for cname, kind, ccols in cons:
            self.add_constraint(t, cname, kind, ccols)

    def table_trailer(self, p: _Parser, name: str) -> None:
        if p.at_end():
            return
        if p.is_word("EXPORT", "MIGRATE", "USING"):
            warnings.warn(f"{self.where()}: table {name}: '{p.rest()[:40]}' is not "
                          "implemented by voltdb_py; ignored", VoltDBCompatibilityWarning,
                          stacklevel=4)
            return
        raise self.err(f"table {name}: unexpected {p.describe()} after the column list")

    # -- CREATE INDEX ----------------------------------------------------------------

    def create_index(self, p: _Parser) -> None:
        unique = p.accept("UNIQUE")
        assume = not unique and p.accept("ASSUMEUNIQUE")
        p.expect("INDEX")
        name = p.name("an index name")
        p.expect("ON")
        tname = p.name("a table name")
        t = self.table(tname)
        if t.is_view:
            raise self.err(f"index {name}: cannot create an index on view {tname} "
                           "(not supported by voltdb_py)")
        if name in self.all_index_names():
            raise self.cerr(f"index {name} already exists")
        cols = p.name_list("column")
        for col in cols:
            self.check_column(t, col)
        if len(set(cols)) != len(cols):
            raise self.err(f"index {name} lists a column twice")
        if p.accept("WHERE"):
            raise self.err(f"index {name}: partial indexes (WHERE) are not supported by voltdb_py")
        p.expect_end()
        t.indexes.append(Index(name, self.new_id(), tname, cols, unique=unique,
                               assume_unique=assume))

    # -- PARTITION ---------------------------------------------------------------------

    def partition_table(self, p: _Parser) -> None:
        name = p.name("a table name")
        p.expect("ON", "COLUMN")
        col = p.name("a column name")
        p.expect_end()
        t = self.table(name, view_ok=False)
        c = self.check_column(t, col, "partition column")
        if t.partitioned and t.partition_column == c.name:
            return
        if t.partitioned:
            raise self.err(f"table {name} is already partitioned on column {t.partition_column}")
        self.reid(t)
        t.partitioned = True
        t.partition_column = c.name

    def parse_partition_clause(self, p: _Parser) -> tuple[str, str, int]:
        p.expect("ON", "TABLE")
        table = p.name("a table name")
        p.expect("COLUMN")
        col = p.name("a column name")
        param = 0
        if p.accept("PARAMETER"):
            param = p.integer("the parameter index")
        return table, col, param

    def partition_procedure(self, p: _Parser) -> None:
        pname = p.raw_name("a procedure name")
        table, col, param = self.parse_partition_clause(p)
        p.expect_end()
        key = self.find_procedure(pname)
        if key is None:
            raise self.cerr(f"procedure {pname} does not exist")
        proc = self.cat.procedures[key]
        if proc.partition_table is not None:
            raise self.err(f"procedure {key} is already partitioned")
        proc.partition_table, proc.partition_column, proc.partition_parameter = table, col, param

    # -- CREATE PROCEDURE ------------------------------------------------------------

    def create_procedure(self, p: _Parser) -> None:
        name: str | None = None
        if not p.is_word("PARTITION", "ALLOW", "FROM", "AS", "DIRECTED"):
            name = p.raw_name("a procedure name")
        part = None
        while True:
            if p.accept("PARTITION"):
                if part is not None:
                    raise self.err("PARTITION given twice")
                part = self.parse_partition_clause(p)
            elif p.accept("ALLOW"):
                p.name("a role name")
                while p.accept_punct(","):
                    p.name("a role name")
                warnings.warn(f"{self.where()}: ALLOW (roles) is not implemented by voltdb_py; "
                              "ignored", VoltDBCompatibilityWarning, stacklevel=4)
            elif p.is_word("DIRECTED"):
                raise self.err("DIRECTED procedures are not supported by voltdb_py")
            else:
                break
        if p.accept("FROM", "CLASS"):
            class_path = p.raw_name("a class name")
            p.expect_end()
            simple = class_path.rpartition(".")[2]
            if name is not None and name != simple:
                raise self.err(f"procedure {name}: a FROM CLASS procedure is named after its "
                               f"class ({simple})")
            name = simple
            try:
                cls = self.loader(class_path)
            except Exception as e:  # noqa: BLE001 - any failure of the loader
                raise self.cerr(f"procedure {name}: class {class_path} cannot be loaded: "
                                f"{type(e).__name__}: {e}") from e
            if cls is None:
                raise self.cerr(f"procedure {name}: class {class_path} cannot be loaded")
            sql = None
            module = class_path.rpartition(".")[0]
            if module and module not in self.cat.classes:
                self.cat.classes.append(module)
        elif p.accept("AS"):
            if name is None:
                raise self.err("CREATE PROCEDURE ... AS needs a procedure name")
            if p.is_word("BEGIN"):
                raise self.err(f"procedure {name}: multi-statement procedures (AS BEGIN ... END)"
                               " are not supported by voltdb_py")
            if p.peek().kind == "punct" and p.peek().value == "#":
                raise self.err(f"procedure {name}: Groovy procedures are not supported")
            sql = p.rest()
            if not sql:
                raise self.err(f"procedure {name}: no SQL statement after AS")
            self.check_sql(name, sql)
            class_path = None
        else:
            raise self.err(f"expected AS <sql> or FROM CLASS <class> but found {p.describe()}")
        if self.find_procedure(name) is not None:
            raise self.cerr(f"procedure {self.find_procedure(name)} already exists")
        proc = Procedure(name, sql=sql, class_path=class_path)
        if part is not None:
            proc.partition_table, proc.partition_column, proc.partition_parameter = part
        self.cat.procedures[name] = proc

    _SQL_START = ("SELECT", "INSERT", "UPSERT", "UPDATE", "DELETE", "TRUNCATE", "WITH")

    def check_sql(self, name: str, sql: str) -> None:
        """Light check of a procedure's statement; the SQL layer plans it (sqlglot cannot
        parse VoltDB's UPSERT or SELECT TOP, so a full parse here would refuse valid DDL)."""
        toks = tokenize(sql)
        first = toks[0]
        while first.kind == "punct" and first.value == "(":
            toks = toks[1:]
            first = toks[0]
        if first.kind != "ident" or first.value not in self._SQL_START:
            raise self.err(f"procedure {name}: {first.raw or 'nothing'!r} does not start a SQL "
                           "query or DML statement (SELECT, INSERT, UPSERT, UPDATE, DELETE, "
                           "TRUNCATE)")

    # -- CREATE VIEW -----------------------------------------------------------------

    def create_view(self, p: _Parser) -> None:
        name = p.name("a view name")
        if name in self.cat.tables:
            raise self.cerr(f"table or view {name} already exists")
        names: list[str] | None = None
        if p.peek().kind == "punct" and p.peek().value == "(":
            names = p.name_list("view column")
        p.expect("AS")
        sql = p.rest()
        self.cat.tables[name] = self.build_view(name, names, sql)
        self.created.add(name)

    def build_view(self, name: str, names: list[str] | None, sql: str) -> Table:
        import sqlglot
        from sqlglot import exp
        from sqlglot.errors import SqlglotError
        try:
            stmts = [s for s in sqlglot.parse(sql) if s is not None]
        except SqlglotError as e:
            raise self.err(f"view {name}: the SELECT does not parse: "
                           f"{str(e).splitlines()[0]}") from None
        if len(stmts) != 1 or not isinstance(stmts[0], exp.Select):
            raise self.err(f"view {name}: AS must be followed by one SELECT")
        sel = stmts[0]
        for bad in ("joins", "having", "order", "limit", "offset", "distinct", "with", "with_",
                    "windows", "qualify", "laterals"):
            if sel.args.get(bad):
                raise self.err(f"view {name}: {bad.rstrip('_').upper()} is not supported in a materialized "
                               "view (one source table, GROUP BY, COUNT/SUM/MIN/MAX)")
        frm = sel.args.get("from_") or sel.args.get("from")
        if frm is None or not isinstance(frm.this, exp.Table) or len(frm.expressions or []) > 0:
            raise self.err(f"view {name}: the view must select FROM exactly one table "
                           "(joins and subqueries are not supported)")
        src_name = frm.this.name.upper()
        alias = (frm.this.alias or "").upper()
        src = self.cat.tables.get(src_name)
        if src is None:
            raise self.cerr(f"view {name}: source table {src_name} does not exist")
        if src.is_view:
            raise self.err(f"view {name}: views of views are not supported ({src_name} is a view)")

        def colref(e: Any, what: str) -> str:
            if not isinstance(e, exp.Column):
                raise self.err(f"view {name}: {what} must be a column of {src_name}, not "
                               f"{e.sql()!r} (expressions are not supported)")
            q = (e.table or "").upper()
            if q and q not in (src_name, alias):
                raise self.err(f"view {name}: unknown table {q} in {e.sql()!r}")
            return self.check_column(src, e.name.upper(), f"column of {src_name}").name

        group = sel.args.get("group")
        if group is None or not group.expressions:
            raise self.err(f"view {name}: a materialized view needs GROUP BY "
                           "(views without GROUP BY are not supported by voltdb_py)")
        group_by = [colref(e, "a GROUP BY item") for e in group.expressions]
        if len(set(group_by)) != len(group_by):
            raise self.err(f"view {name}: GROUP BY lists a column twice")
        where_sql = None
        w = sel.args.get("where")
        if w is not None:
            for c in w.find_all(exp.Column):
                colref(c, "a WHERE column")
            if any(True for _ in w.find_all(exp.Subquery, exp.Select)):
                raise self.err(f"view {name}: subqueries are not allowed in a view's WHERE")
            where_sql = w.this.sql()

        aggs: list[tuple[str, str | None]] = []
        cols: list[Column] = []
        out_group: dict[str, str] = {}
        has_count_star = False
        items = sel.expressions
        if names is not None and len(names) != len(items):
            raise self.err(f"view {name}: {len(names)} column names for {len(items)} "
                           "selected items")
        for k, item in enumerate(items):
            given = names[k] if names is not None else None
            inner = item
            if isinstance(item, exp.Alias):
                inner = item.this
                given = given or item.alias.upper()
            if isinstance(inner, exp.Column):
                sc = colref(inner, "a selected column")
                if sc not in group_by:
                    raise self.err(f"view {name}: column {sc} is selected but not in GROUP BY "
                                   "(it must be grouped or aggregated)")
                if sc in out_group:
                    raise self.err(f"view {name}: GROUP BY column {sc} is selected twice")
                cname = given or sc
                out_group[sc] = cname
                s = src.column(sc)
                cols.append(Column(cname, s.vtype, s.size, s.in_bytes, nullable=s.nullable))
                continue
            fn = {exp.Count: "COUNT", exp.Sum: "SUM", exp.Min: "MIN", exp.Max: "MAX"}.get(type(inner))
            if fn is None:
                raise self.err(f"view {name}: {item.sql()!r} is not a column or COUNT/SUM/MIN/"
                               "MAX of a column")
            arg = inner.this
            if isinstance(arg, exp.Distinct):
                raise self.err(f"view {name}: DISTINCT aggregates are not supported in views")
            cname = given or f"C{k + 1}"
            if fn == "COUNT" and isinstance(arg, exp.Star):
                has_count_star = True
                aggs.append(("COUNT", None))
                cols.append(Column(cname, VoltType.BIGINT, nullable=False))
                continue
            sc = colref(arg, f"the argument of {fn}")
            s = src.column(sc)
            aggs.append((fn, sc))
            if fn == "COUNT":
                cols.append(Column(cname, VoltType.BIGINT, nullable=False))
            elif fn == "SUM":
                if s.vtype in INTEGER_TYPES:
                    vt = VoltType.BIGINT
                elif s.vtype in (VoltType.FLOAT, VoltType.DECIMAL):
                    vt = s.vtype
                else:
                    raise self.err(f"view {name}: SUM of {s.vtype.sql_name} column {sc} "
                                   "is not allowed")
                cols.append(Column(cname, vt))
            else:
                cols.append(Column(cname, s.vtype, s.size, s.in_bytes))
        missing = [g for g in group_by if g not in out_group]
        if missing:
            raise self.err(f"view {name}: GROUP BY column(s) {', '.join(missing)} must be "
                           "selected")
        if not has_count_star:
            raise self.err(f"view {name}: a materialized view must include COUNT(*)")
        seen: set[str] = set()
        for c in cols:
            if c.name in seen:
                raise self.cerr(f"view {name} has two columns named {c.name}")
            seen.add(c.name)
        pk = [out_group[g] for g in group_by]
        vid = self.new_id()
        ix = Index(self.unique_index_name(f"VOLTDB_AUTOGEN_IDX_PK_{name}"), self.new_id(), name,
                   list(pk), unique=True, primary_key=True)
        view = ViewDef(src_name, group_by, aggs, sql=sql, where=where_sql)
        t = Table(name, vid, cols, primary_key=pk, indexes=[ix], view=view)
        self.set_view_partitioning(t)
        return t

    def set_view_partitioning(self, v: Table) -> None:
        src = self.cat.tables[v.view.source]
        v.partitioned = src.partitioned
        v.partition_column = None
        if src.partitioned and src.partition_column in v.view.group_by:
            v.partition_column = v.primary_key[v.view.group_by.index(src.partition_column)]

    def views_of(self, table: str) -> list[Table]:
        return [t for t in self.cat.tables.values() if t.is_view and t.view.source == table]

    # -- DROP --------------------------------------------------------------------------

    def drop(self, p: _Parser) -> None:
        if p.accept("TABLE"):
            kind = "TABLE"
        elif p.accept("VIEW"):
            kind = "VIEW"
        elif p.accept("INDEX"):
            kind = "INDEX"
        elif p.accept("PROCEDURE"):
            kind = "PROCEDURE"
        else:
            raise self.err(f"DROP of {p.describe()} is not supported")
        if_exists = p.accept("IF", "EXISTS")
        name = p.raw_name("a name") if kind == "PROCEDURE" else p.name(f"a {kind.lower()} name")
        if p.accept("IF", "EXISTS"):
            if_exists = True
        cascade = p.accept("CASCADE")
        p.expect_end()
        if kind == "PROCEDURE":
            key = self.find_procedure(name)
            if key is None:
                if if_exists:
                    return
                raise self.cerr(f"procedure {name} does not exist")
            del self.cat.procedures[key]
            return
        if kind == "INDEX":
            owner = self.all_index_names().get(name)
            if owner is None:
                if if_exists:
                    return
                raise self.cerr(f"index {name} does not exist")
            ix = next(ix for ix in owner.indexes if ix.name == name)
            if owner.is_view:
                raise self.err(f"index {name} belongs to view {owner.name} and cannot be dropped")
            if ix.from_constraint:
                raise self.err(f"index {name} enforces constraint {ix.constraint} of table "
                               f"{owner.name}; use ALTER TABLE {owner.name} DROP CONSTRAINT")
            owner.indexes.remove(ix)
            return
        t = self.cat.tables.get(name)
        if t is None:
            if if_exists:
                return
            raise self.cerr(f"{kind.lower()} {name} does not exist")
        if kind == "TABLE" and t.is_view:
            raise self.err(f"{name} is a view; use DROP VIEW")
        if kind == "VIEW" and not t.is_view:
            raise self.err(f"{name} is a table, not a view; use DROP TABLE")
        if kind == "TABLE":
            views = self.views_of(name)
            if views and not cascade:
                raise self.err(f"table {name} cannot be dropped: view(s) "
                               f"{', '.join(v.name for v in views)} depend on it "
                               "(use DROP TABLE ... CASCADE)")
            for v in views:
                del self.cat.tables[v.name]
        del self.cat.tables[name]
        self.created.discard(name)
        self.reided.discard(name)

    # -- ALTER TABLE ------------------------------------------------------------------

    def alter_table(self, p: _Parser) -> None:
        name = p.name("a table name")
        t = self.table(name, view_ok=False)
        if p.accept("ADD"):
            if p.is_word("CONSTRAINT", "PRIMARY", "UNIQUE", "ASSUMEUNIQUE"):
                cname = p.name("a constraint name") if p.accept("CONSTRAINT") else None
                kind = self.constraint_kind(p, "")
                cols = p.name_list("column")
                p.expect_end()
                if kind == "PK":
                    self.reid(t)
                self.add_constraint(t, cname, kind, cols)
                return
            p.accept("COLUMN")
            cons: list = []
            c = self.parse_column(p, name, cons)
            before = p.name("a column name") if p.accept("BEFORE") else None
            p.expect_end()
            if any(x.name == c.name for x in t.columns):
                raise self.cerr(f"column {c.name} already exists in table {name}")
            if len(t.columns) >= MAX_COLUMNS:
                raise self.err(f"table {name} would have more than {MAX_COLUMNS} columns")
            pos = len(t.columns)
            if before is not None:
                pos = t.column_index(self.check_column(t, before).name)
            self.reid(t)
            t.columns.insert(pos, c)
            for cname, kind, ccols in cons:
                self.add_constraint(t, cname, kind, ccols)
            return
        if p.accept("DROP"):
            if p.accept("PRIMARY", "KEY"):
                p.expect_end()
                if t.primary_key is None:
                    raise self.err(f"table {name} has no primary key")
                self.reid(t)
                t.indexes = [ix for ix in t.indexes if not ix.primary_key]
                t.primary_key = None
                return
            if p.accept("CONSTRAINT"):
                cname = p.name("a constraint name")
                p.expect_end()
                ix = next((ix for ix in t.indexes if ix.constraint == cname), None)
                if ix is None:
                    raise self.cerr(f"constraint {cname} does not exist in table {name}")
                if ix.primary_key:
                    self.reid(t)
                    t.primary_key = None
                    ix = next(x for x in t.indexes if x.constraint == cname)
                t.indexes.remove(ix)
                return
            p.accept("COLUMN")
            col = p.name("a column name")
            cascade = p.accept("CASCADE")
            p.expect_end()
            c = self.check_column(t, col)
            if t.partition_column == c.name:
                raise self.err(f"column {c.name} is the partition column of table {name} and "
                               "cannot be dropped")
            if t.primary_key and c.name in t.primary_key:
                raise self.err(f"column {c.name} is part of the primary key of table {name} and "
                               "cannot be dropped")
            if len(t.columns) == 1:
                raise self.err(f"column {c.name} is the only column of table {name}")
            users = [ix for ix in t.indexes if c.name in ix.columns]
            views = [v for v in self.views_of(name) if c.name in v.view.group_by
                     or any(a[1] == c.name for a in v.view.aggregates)
                     or (v.view.where and _mentions(v.view.where, c.name))]
            if (users or views) and not cascade:
                deps = [f"index {ix.name}" for ix in users] + [f"view {v.name}" for v in views]
                raise self.err(f"column {c.name} of table {name} is used by {', '.join(deps)} "
                               "(use DROP COLUMN ... CASCADE)")
            self.reid(t)
            t.indexes = [ix for ix in t.indexes if c.name not in ix.columns]
            for v in views:
                del self.cat.tables[v.name]
            del t.columns[t.column_index(c.name)]
            return
        if p.accept("ALTER"):
            raise self.err("ALTER TABLE ... ALTER COLUMN is not supported by voltdb_py")
        raise self.err(f"expected ADD or DROP after ALTER TABLE {name}, found {p.describe()}")

    # -- end of batch -----------------------------------------------------------------

    def finish(self) -> None:
        self.n, self.stmt = 0, "end of batch"
        for t in self.cat.tables.values():
            if t.is_view:
                self.set_view_partitioning(t)
                continue
            if t.partitioned:
                c = t.column(t.partition_column)
                if c.nullable:
                    raise DDLError(f"PARTITION TABLE {t.name}: partition column "
                                   f"'{t.name}.{c.name}' is nullable; partition columns must be "
                                   "constrained NOT NULL")
                if c.vtype not in PARTITION_TYPES:
                    raise DDLError(f"PARTITION TABLE {t.name}: partition column {c.name} is "
                                   f"{c.vtype.sql_name}; partition columns must be an integer, "
                                   "VARCHAR or VARBINARY type")
                for ix in t.indexes:
                    if (ix.unique or ix.primary_key) and t.partition_column not in ix.columns:
                        what = "PRIMARY KEY" if ix.primary_key else "UNIQUE"
                        raise DDLError(
                            f"table {t.name}: {what} index {ix.name} ({', '.join(ix.columns)}) "
                            f"does not include the partition column {t.partition_column}; "
                            "use ASSUMEUNIQUE or add the column")
            else:
                for ix in t.indexes:
                    if ix.assume_unique:
                        raise DDLError(f"table {t.name}: ASSUMEUNIQUE index {ix.name} is not "
                                       "valid on a replicated table; use UNIQUE")
        for proc in self.cat.procedures.values():
            if proc.partition_table is None:
                continue
            where = f"procedure {proc.name}: PARTITION ON TABLE {proc.partition_table}"
            t = self.cat.tables.get(proc.partition_table)
            if t is None:
                raise CatalogError(f"{where}: table {proc.partition_table} does not exist")
            if t.is_view or not t.partitioned:
                raise DDLError(f"{where}: {t.name} is not a partitioned table")
            col = proc.partition_column.upper() if proc.partition_column else None
            if col != t.partition_column:
                raise DDLError(f"{where} COLUMN {proc.partition_column}: the partition column "
                               f"of {t.name} is {t.partition_column}")
            proc.partition_table, proc.partition_column = t.name, col
            if proc.partition_parameter < 0:
                raise DDLError(f"{where}: PARAMETER must be >= 0")
        self.cat.version = self.orig.version + 1


def _mentions(sql: str, col: str) -> bool:
    return any(t.kind in ("ident", "qident") and t.value == col for t in tokenize(sql))
