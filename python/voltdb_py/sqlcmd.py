# SPDX-License-Identifier: AGPL-3.0-or-later
"""sqlcmd-py: VoltDB's interactive SQL shell (sqlcmd) for voltdb_py servers.

Usage::

    sqlcmd-py [--servers h1,h2] [--port 21212] [--user U --password P]
              [--query "..."] [--output-format fixed|csv|tab] [--output-skip-metadata]
              [--stop-on-error true|false] [file.sql ...]

Without files or ``--query`` it reads commands from stdin: an interactive shell on a
terminal (prompt ``1>``), a script otherwise (``sqlcmd-py < ddl.sql``). Statements end
with ``;``; directives (``exec``, ``file``, ``LOAD CLASSES``, ``show``, ``describe``,
``help``, ``exit``) are recognized at the start of a line and end at the end of it.
See docs/tools.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import decimal
import io
import re
import sys
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from voltdb_py.types import ClientResponse, Status, VoltTable, VoltType

__all__ = [
    "Command",
    "ScriptSplitter",
    "Session",
    "SqlcmdError",
    "format_table",
    "main",
    "parse_exec_args",
    "split_commands",
]

DEFAULT_PORT = 21212
#: Exit code of a failed run (VoltDB's sqlcmd exits with -1).
EXIT_FAILURE = 255
MAX_FILE_DEPTH = 16


class SqlcmdError(Exception):
    """A command that cannot be run as written (bad directive, missing file, bad quoting)."""


class Command(NamedTuple):
    """One unit of work: kind and its text.

    kinds: ``sql`` (a statement without ';'), ``exec`` (procedure and arguments), ``batch``
    (the body of ``file -inlinebatch``), ``file``, ``file_batch``, ``load_classes``,
    ``remove_classes``, ``show``, ``describe``, ``help``, ``exit``.
    """

    kind: str
    text: str


# --------------------------------------------------------------------------- splitting

_RE_EXIT = re.compile(r"(?:exit|quit)\s*;?\s*$", re.IGNORECASE)
_RE_HELP = re.compile(r"help(?:\s+\S+)?\s*;?\s*$", re.IGNORECASE)
_RE_SHOW = re.compile(r"(?:show|list)\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_RE_DESCRIBE = re.compile(r"(?:describe|desc)\s+([\w\"$.]+)\s*;?\s*$", re.IGNORECASE)
_RE_INLINE = re.compile(r"file\s+-inlinebatch\s+(\S+?)\s*;?\s*$", re.IGNORECASE)
_RE_FILE = re.compile(r"file\s+(-batch\s+)?('[^']+'|\"[^\"]+\"|\S+?)\s*;?\s*$", re.IGNORECASE)
_RE_CLASSES = re.compile(r"(load|remove)\s+classes\s+('[^']+'|\"[^\"]+\"|\S+?)\s*;?\s*(?:--.*)?$",
                         re.IGNORECASE)
_RE_EXEC = re.compile(r"(?:exec|execute)\s+(.*)$", re.IGNORECASE | re.DOTALL)


def _find_terminator(text: str) -> int:
    """Index of the first ';' outside quotes and comments, or -1."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            j = i + 1
            while True:
                j = text.find(c, j)
                if j < 0:
                    return -1  # the quote is still open
                if j + 1 < n and text[j + 1] == c:
                    j += 2
                    continue
                break
            i = j + 1
        elif text.startswith("--", i):
            j = text.find("\n", i)
            if j < 0:
                return -1
            i = j + 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                return -1
            i = j + 2
        elif c == ";":
            return i
        else:
            i += 1
    return -1


def _only_comments(text: str) -> bool:
    """Whether text holds nothing but whitespace and comments."""
    stripped = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    stripped = re.sub(r"--[^\n]*", " ", stripped)
    return not stripped.strip()


def _unquote(path: str) -> str:
    if len(path) >= 2 and path[0] == path[-1] and path[0] in "'\"":
        return path[1:-1]
    return path


class ScriptSplitter:
    """Turn lines of input into Commands, the way sqlcmd reads a terminal or a script.

    Feed lines with :meth:`feed` (each returns the commands completed by that line) and
    call :meth:`finish` at the end of the input. :attr:`pending` tells whether a statement
    or an inline batch is still open (the shell then keeps reading).
    """

    def __init__(self) -> None:
        self._buf: list[str] = []
        self._term: str | None = None
        self._batch: list[str] = []
        self._batch_line = 0
        self.line = 0

    @property
    def pending(self) -> bool:
        return bool(self._buf) or self._term is not None

    def feed(self, line: str) -> list[Command]:
        self.line += 1
        return self._feed(line.rstrip("\r\n"))

    def _feed(self, line: str) -> list[Command]:
        if self._term is not None:
            if line.strip().rstrip(";").strip() == self._term:
                self._term = None
                text = "\n".join(self._batch)
                self._batch = []
                return [Command("batch", text)]
            self._batch.append(line)
            return []
        out: list[Command] = []
        if not self._buf:
            s = line.strip()
            if not s or s.startswith("--"):
                return out
            if _RE_EXIT.match(s):
                return [Command("exit", "")]
            if _RE_HELP.match(s):
                return [Command("help", s)]
            m = _RE_SHOW.match(s)
            if m:
                return [Command("show", m.group(1).lower())]
            m = _RE_DESCRIBE.match(s)
            if m:
                return [Command("describe", m.group(1))]
            m = _RE_INLINE.match(s)
            if m:
                self._term = m.group(1)
                self._batch = []
                self._batch_line = self.line
                return out
            m = _RE_CLASSES.match(s)
            if m:
                return [Command(m.group(1).lower() + "_classes", _unquote(m.group(2)))]
            m = _RE_FILE.match(s)
            if m:
                return [Command("file_batch" if m.group(1) else "file", _unquote(m.group(2)))]
            m = _RE_EXEC.match(s)
            if m:
                rest = m.group(1)
                end = _find_terminator(rest)
                if end < 0:
                    return [Command("exec", rest.strip())]
                out.append(Command("exec", rest[:end].strip()))
                tail = rest[end + 1:]
                if tail.strip():
                    out += self._feed(tail)
                return out
        self._buf.append(line)
        text = "\n".join(self._buf)
        end = _find_terminator(text)
        if end < 0:
            return out
        self._buf = []
        stmt = text[:end].strip()
        if stmt and not _only_comments(stmt):
            out.append(Command("sql", stmt))
        tail = text[end + 1:]
        if tail.strip():
            out += self._feed(tail)
        return out

    def finish(self) -> list[Command]:
        """End of input: an open statement is run as is; an open inline batch is an error."""
        if self._term is not None:
            term, self._term = self._term, None
            raise SqlcmdError(f"file -inlinebatch {term} at line {self._batch_line}: "
                              f"no closing line {term!r}")
        text = "\n".join(self._buf).strip()
        self._buf = []
        if text and not _only_comments(text):
            return [Command("sql", text)]
        return []


def split_commands(text: str) -> list[Command]:
    """All the commands of a script text (see ScriptSplitter)."""
    sp = ScriptSplitter()
    out: list[Command] = []
    for line in text.split("\n"):
        out += sp.feed(line)
    return out + sp.finish()


# --------------------------------------------------------------------------- exec arguments

_INT_RE = re.compile(r"[+-]?\d+$")
_DEC_RE = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+)$")
_FLOAT_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


def _tokens(text: str) -> list[tuple[bool, str]]:
    """Split exec arguments at spaces and commas: (quoted, text) pairs."""
    out: list[tuple[bool, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace() or c == ",":
            i += 1
            continue
        if c in "'\"":
            buf = []
            j = i + 1
            while True:
                if j >= n:
                    raise SqlcmdError(f"unterminated quoted string in: {text}")
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        buf.append(c)
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            out.append((True, "".join(buf)))
            i = j + 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in ",'\"":
            j += 1
        out.append((False, text[i:j]))
        i = j
    return out


def _value(quoted: bool, tok: str) -> Any:
    if quoted:
        return tok
    if tok.upper() == "NULL":
        return None
    if _INT_RE.match(tok):
        return int(tok)
    if _DEC_RE.match(tok):
        return decimal.Decimal(tok)
    if _FLOAT_RE.match(tok):
        return float(tok)
    return tok


def parse_exec_args(text: str) -> tuple[str, list[Any]]:
    """Parse ``Proc arg1, 'a string', NULL 5 1.5`` into (procedure, values).

    Quoted text (single or double quotes, doubled to escape) is a string; unquoted
    ``NULL`` is NULL; unquoted integers, decimals and floats are numbers; any other
    unquoted word is a string. The server converts each value to the parameter's type.

    :raises SqlcmdError: no procedure name, or an unterminated quote.
    """
    toks = _tokens(text)
    if not toks or toks[0][0] or not toks[0][1]:
        raise SqlcmdError("exec needs a procedure name: exec <procedure> [arguments...]")
    return toks[0][1], [_value(q, t) for q, t in toks[1:]]


_INTEGER_CODES = {int(VoltType.TINYINT), int(VoltType.SMALLINT), int(VoltType.INTEGER),
                  int(VoltType.BIGINT)}


def coerce_partition_arg(value: Any, type_code: int) -> Any:
    """Convert the partitioning argument to its column's type so the call is routed right."""
    if value is None:
        return None
    try:
        if type_code in _INTEGER_CODES:
            if isinstance(value, str) and _INT_RE.match(value.strip()):
                return int(value)
            if isinstance(value, decimal.Decimal) and value == value.to_integral_value():
                return int(value)
        elif type_code == int(VoltType.STRING) and isinstance(value, (int, decimal.Decimal)):
            return str(value)
        elif type_code == int(VoltType.VARBINARY) and isinstance(value, str):
            return bytes.fromhex(value)
    except ValueError:
        pass
    return value


# --------------------------------------------------------------------------- output

def _cell(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, _dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex().upper()
    if isinstance(v, VoltTable):
        return f"<table of {len(v.rows)} rows>"
    return str(v)


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float, decimal.Decimal)) and not isinstance(v, bool)


def format_table(table: VoltTable, fmt: str = "fixed", header: bool = True) -> str:
    """Render a table as sqlcmd does: fixed-width columns, csv, or tab-separated."""
    names = [c.name for c in table.columns]
    rows = [[_cell(v) for v in row] for row in table.rows]
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        if header:
            w.writerow(names)
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "tab":
        lines = (["\t".join(names)] if header else []) + ["\t".join(r) for r in rows]
        return "".join(line + "\n" for line in lines)
    widths = [len(n) for n in names]
    for r in rows:
        for i, s in enumerate(r):
            widths[i] = max(widths[i], len(s))
    lines = []
    if header:
        lines.append(" ".join(n.ljust(w) for n, w in zip(names, widths)).rstrip())
        lines.append(" ".join("-" * w for w in widths))
    for raw, r in zip(table.rows, rows):
        cells = [s.rjust(w) if _numeric(v) else s.ljust(w)
                 for v, s, w in zip(raw, r, widths)]
        lines.append(" ".join(cells).rstrip())
    return "".join(line + "\n" for line in lines)


_DDL_RE = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(CREATE|DROP|ALTER|PARTITION|DR|EXPORT|SET)\b",
    re.IGNORECASE | re.DOTALL)
_DML_RE = re.compile(
    r"^\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*(INSERT|UPSERT|UPDATE|DELETE|TRUNCATE)\b",
    re.IGNORECASE | re.DOTALL)

SYSTEM_PROCEDURES = (
    "@AdHoc", "@Explain", "@ExplainProc", "@GetPartitionKeys", "@LoadMultipartitionTable",
    "@LoadSinglepartitionTable", "@Pause", "@Ping", "@Resume", "@Shutdown", "@Statistics",
    "@Subscribe", "@SystemCatalog", "@SystemInformation", "@UpdateClasses",
)

HELP_TEXT = """\
sqlcmd-py: run SQL and commands against a voltdb_py (VoltDB-protocol) server.

  <SQL statement>;                 SELECT, INSERT, UPDATE, DELETE, UPSERT, or DDL
                                   (CREATE/DROP/ALTER/PARTITION ...), ended by ';'
  exec[ute] <proc> [args...]       call a procedure; args: 'quoted strings', NULL, numbers
  file <path>                      run the commands of a script file
  file -batch <path>               send a whole DDL file as one batch
  file -inlinebatch <END>          send the lines up to a line <END> as one DDL batch
  load classes <module.py|dir|zip> upload Python procedure classes (@UpdateClasses)
  show tables|procedures|classes   list the schema objects
  describe <table>                 the columns of a table or view
  help                             this text
  exit | quit                      leave
"""


# --------------------------------------------------------------------------- the session

class Session:
    """Runs commands against one connected client, writing results like sqlcmd.

    :param client: a connected :class:`voltdb_py.client.Client` (or anything with the same
        ``call`` / ``call_typed`` / ``procedures``).
    """

    def __init__(self, client: Any, out: TextIO | None = None, err: TextIO | None = None,
                 output_format: str = "fixed", skip_metadata: bool = False,
                 stop_on_error: bool = True) -> None:
        self.client = client
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.fmt = output_format
        self.skip_metadata = skip_metadata
        self.stop_on_error = stop_on_error
        self.errors = 0
        self.exit_requested = False
        self._depth = 0

    # -- output helpers

    def _print(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def _error(self, msg: str) -> bool:
        self.errors += 1
        self.err.write(msg.rstrip("\n") + "\n")
        self.err.flush()
        return False

    def _returned(self, n: int, elapsed: float) -> None:
        if not self.skip_metadata:
            if self.fmt == "fixed":
                self._print()
            self._print(f"(Returned {n} rows in {elapsed:.2f}s)")
            if self.fmt == "fixed":
                self._print()

    def _show_table(self, table: VoltTable, elapsed: float) -> None:
        self.out.write(format_table(table, self.fmt, header=not self.skip_metadata))
        self._returned(len(table.rows), elapsed)

    def _response_failed(self, resp: ClientResponse) -> bool:
        if resp.status == Status.SUCCESS:
            return False
        msg = resp.status_string or f"status {resp.status}"
        if resp.app_status_string:
            msg += f"\n{resp.app_status_string}"
        self._error(msg)
        return True

    # -- running

    def run_text(self, text: str, source: Path | None = None) -> bool:
        """Run a script; False when it stopped early (exit, or an error with stop-on-error)."""
        sp = ScriptSplitter()
        try:
            for line in text.split("\n"):
                for cmd in sp.feed(line):
                    if not self.run_command(cmd, source) and self._stop():
                        return False
            for cmd in sp.finish():
                if not self.run_command(cmd, source) and self._stop():
                    return False
        except SqlcmdError as exc:
            self._error(str(exc))
            return not self.stop_on_error
        return True

    def _stop(self) -> bool:
        return self.exit_requested or self.stop_on_error

    def run_command(self, cmd: Command, source: Path | None = None) -> bool:
        """Run one command; False when it failed (or asked to exit)."""
        try:
            return getattr(self, "_cmd_" + cmd.kind)(cmd.text, source)
        except SqlcmdError as exc:
            return self._error(str(exc))

    def _cmd_exit(self, text: str, source: Path | None) -> bool:
        self.exit_requested = True
        return False

    def _cmd_help(self, text: str, source: Path | None) -> bool:
        self.out.write(HELP_TEXT)
        return True

    def _cmd_sql(self, text: str, source: Path | None) -> bool:
        t0 = time.perf_counter()
        resp = self.client.call("@AdHoc", text)
        elapsed = time.perf_counter() - t0
        if self._response_failed(resp):
            return False
        if _DDL_RE.match(text):
            if not self.skip_metadata:
                self._print("Command succeeded.")
            return True
        dml = _DML_RE.match(text) is not None
        for table in resp.tables:
            if dml and len(table.columns) == 1 and \
                    table.columns[0].name.upper() == "MODIFIED_TUPLES" and len(table.rows) == 1:
                self._returned(int(table.rows[0][0] or 0), elapsed)
            else:
                self._show_table(table, elapsed)
        return True

    def _cmd_batch(self, text: str, source: Path | None) -> bool:
        if _only_comments(text):
            return True
        resp = self.client.call("@AdHoc", text)
        if self._response_failed(resp):
            return False
        if not self.skip_metadata:
            self._print("Command succeeded.")
        return True

    def _cmd_exec(self, text: str, source: Path | None) -> bool:
        proc, args = parse_exec_args(text)
        info = getattr(self.client, "procedures", {}).get(proc)
        if info and info[0] and 0 <= info[1] < len(args):
            args[info[1]] = coerce_partition_arg(args[info[1]], info[2])
        t0 = time.perf_counter()
        resp = self.client.call(proc, *args)
        elapsed = time.perf_counter() - t0
        if self._response_failed(resp):
            return False
        for table in resp.tables:
            self._show_table(table, elapsed)
        return True

    def _resolve(self, path: str, source: Path | None) -> Path:
        p = Path(path).expanduser()
        if p.exists() or p.is_absolute() or source is None:
            return p
        alt = source.parent / p
        return alt if alt.exists() else p

    def _read_file(self, path: str, source: Path | None) -> tuple[Path, str]:
        p = self._resolve(path, source)
        try:
            return p, p.read_text(encoding="utf-8")
        except OSError as exc:
            raise SqlcmdError(f"Can not read file {path}: {exc.strerror or exc}") from None

    def _cmd_file(self, text: str, source: Path | None) -> bool:
        p, body = self._read_file(text, source)
        if self._depth >= MAX_FILE_DEPTH:
            raise SqlcmdError(f"file {text}: files nested more than {MAX_FILE_DEPTH} deep")
        self._depth += 1
        try:
            before = self.errors
            ok = self.run_text(body, p)
            return ok and (self.errors == before or not self.stop_on_error)
        finally:
            self._depth -= 1

    def _cmd_file_batch(self, text: str, source: Path | None) -> bool:
        _, body = self._read_file(text, source)
        return self._cmd_batch(body, source)

    def _cmd_load_classes(self, text: str, source: Path | None) -> bool:
        p = self._resolve(text, source)
        if p.suffix.lower() == ".jar":
            self.err.write(f"Warning: LOAD CLASSES {text}: voltdb_py runs Python procedure "
                           "classes, not Java jars; skipped (load a .py module, a package "
                           "directory or a .zip)\n")
            return True
        if not p.exists():
            raise SqlcmdError(f"LOAD CLASSES: file not found: {text}")
        if p.is_dir():
            if not (p / "__init__.py").is_file():
                raise SqlcmdError(f"LOAD CLASSES {text}: a directory must be a Python package "
                                  "(with __init__.py)")
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(p.rglob("*")):
                    if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc":
                        zf.write(f, (Path(p.name) / f.relative_to(p)).as_posix())
            payload, name = buf.getvalue(), p.name + ".zip"
        elif p.suffix.lower() in (".py", ".zip"):
            payload, name = p.read_bytes(), p.name
        else:
            raise SqlcmdError(f"LOAD CLASSES {text}: expected a Python module (.py), a package "
                              "directory or a .zip archive")
        resp = self.client.call_typed("@UpdateClasses",
                                      [VoltType.VARBINARY, VoltType.STRING], payload, name)
        if self._response_failed(resp):
            return False
        if not self.skip_metadata:
            self._print("Command succeeded.")
        return True

    def _cmd_remove_classes(self, text: str, source: Path | None) -> bool:
        self.err.write(f"Warning: REMOVE CLASSES {text}: not supported by voltdb_py; skipped\n")
        return True

    def _catalog(self, selector: str) -> VoltTable | None:
        resp = self.client.call("@SystemCatalog", selector)
        if self._response_failed(resp):
            return None
        return resp.tables[0]

    def _section(self, title: str, names: Iterable[str]) -> None:
        self._print(f"--- {title} " + "-" * max(4, 60 - len(title) - 5))
        for n in names:
            self._print(n)
        self._print()

    def _cmd_show(self, what: str, source: Path | None) -> bool:
        if what in ("tables", "table"):
            t = self._catalog("TABLES")
            if t is None:
                return False
            ni, ti = t.column_index("TABLE_NAME"), t.column_index("TABLE_TYPE")
            self._print()
            self._section("User Tables", [r[ni] for r in t.rows if r[ti] == "TABLE"])
            self._section("User Views", [r[ni] for r in t.rows if r[ti] == "VIEW"])
            self._section("User Export Streams", [r[ni] for r in t.rows if r[ti] == "STREAM"])
            return True
        if what in ("procedures", "proc", "procs"):
            t = self._catalog("PROCEDURES")
            if t is None:
                return False
            ni = t.column_index("PROCEDURE_NAME")
            self._print()
            self._section("System Procedures", SYSTEM_PROCEDURES)
            self._section("User Procedures", [r[ni] for r in t.rows])
            return True
        if what == "classes":
            resp = self.client.call_typed("@UpdateClasses",
                                          [VoltType.VARBINARY, VoltType.STRING], None, None)
            if self._response_failed(resp):
                return False
            rows = resp.tables[0].rows if resp.tables else []
            self._print()
            self._section("Potential Procedure Classes", [r[0] for r in rows if not r[2]])
            self._section("Active Procedure Classes", [r[0] for r in rows if r[2]])
            self._section("Non-Procedure Classes", [])
            return True
        raise SqlcmdError(f"show {what}: use show tables, show procedures or show classes")

    def _cmd_describe(self, name: str, source: Path | None) -> bool:
        t = self._catalog("COLUMNS")
        if t is None:
            return False
        want = name.strip('"') if name.startswith('"') else name.upper()
        ti = t.column_index("TABLE_NAME")
        rows = [r for r in t.rows if r[ti] == want]
        if not rows:
            raise SqlcmdError(f"Table {name} does not exist")
        rows.sort(key=lambda r: r[t.column_index("ORDINAL_POSITION")])
        from voltdb_py.types import Column
        idx = [t.column_index(c) for c in ("COLUMN_NAME", "TYPE_NAME", "COLUMN_SIZE",
                                           "IS_NULLABLE", "REMARKS")]
        out = VoltTable([Column("COLUMN", VoltType.STRING), Column("DATATYPE", VoltType.STRING),
                         Column("SIZE", VoltType.INTEGER), Column("NULLABLE", VoltType.STRING),
                         Column("REMARKS", VoltType.STRING)],
                        [tuple(r[i] for i in idx) for r in rows])
        self.out.write(format_table(out, self.fmt, header=not self.skip_metadata))
        return True

    # -- the interactive shell

    def interactive(self, read_line: Any = input) -> None:
        """Read commands with a ``N>`` prompt until exit or end of input."""
        try:
            import readline  # noqa: F401 - line editing and history when available
        except ImportError:  # pragma: no cover
            pass
        sp = ScriptSplitter()
        n = 1
        while not self.exit_requested:
            try:
                line = read_line(f"{n}> ")
            except EOFError:
                self._print()
                break
            except KeyboardInterrupt:
                self._print()
                sp = ScriptSplitter()
                continue
            try:
                cmds = sp.feed(line)
            except SqlcmdError as exc:
                self._error(str(exc))
                sp = ScriptSplitter()
                continue
            for cmd in cmds:
                n += 1
                self.run_command(cmd)
                self.out.flush()
                if self.exit_requested:
                    break


# --------------------------------------------------------------------------- entry point

def _bool(text: str) -> bool:
    v = text.strip().lower()
    if v in ("true", "yes", "on", "1"):
        return True
    if v in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sqlcmd-py", description="VoltDB's sqlcmd for voltdb_py servers.",
        epilog="Without files or --query, commands are read from stdin "
               "(an interactive shell on a terminal).")
    p.add_argument("--servers", default="localhost",
                   help="comma-separated server list, each host[:port] (default: localhost)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"client port for servers given without one (default {DEFAULT_PORT})")
    p.add_argument("--user", default="", help="user name")
    p.add_argument("--password", default="", help="password")
    p.add_argument("--query", default=None, help="run these statements and exit")
    p.add_argument("--output-format", choices=("fixed", "csv", "tab"), default="fixed",
                   type=str.lower, help="result layout (default fixed)")
    p.add_argument("--output-skip-metadata", action="store_true",
                   help="print only the rows: no headers, row counts or messages")
    p.add_argument("--stop-on-error", type=_bool, default=True, metavar="true|false",
                   help="stop a script or --query at the first failed command (default true)")
    p.add_argument("--query-timeout", type=float, default=None, metavar="MS",
                   help="per-call timeout in milliseconds (default: 120000)")
    p.add_argument("files", nargs="*", help="script files to run, in order, then exit")
    return p


def main(argv: list[str] | None = None, stdin: TextIO | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Entry point of sqlcmd-py; returns the exit code (0, or 255 after a failure)."""
    from voltdb_py.client import AuthenticationError, Client, ClientConnectionError, parse_hosts

    args = build_parser().parse_args(argv)
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        hosts = parse_hosts(args.servers, default_port=args.port)
    except ValueError as exc:
        err.write(f"sqlcmd-py: error: --servers {args.servers!r}: {exc}\n")
        return EXIT_FAILURE
    where = ",".join(f"{h}:{p}" for h, p in hosts)
    options: dict[str, Any] = {"username": args.user, "password": args.password}
    if args.query_timeout is not None:
        options["timeout_s"] = args.query_timeout / 1000.0
    try:
        client = Client(hosts, **options)
    except AuthenticationError as exc:
        err.write(f"sqlcmd-py: error: Authentication rejected by {exc.host}:{exc.port} "
                  f"({exc.reason})\n")
        return EXIT_FAILURE
    except ClientConnectionError as exc:
        err.write(f"sqlcmd-py: error: Unable to connect to VoltDB cluster {where}: "
                  f"{exc.reason}\n")
        return EXIT_FAILURE
    try:
        session = Session(client, out, err, args.output_format, args.output_skip_metadata,
                          args.stop_on_error)
        if args.query is not None or args.files:
            ok = True
            if args.query is not None:
                ok = session.run_text(args.query)
            for f in args.files:
                if not ok or session.exit_requested:
                    break
                ok = session.run_command(Command("file", f)) or not args.stop_on_error
        elif stdin.isatty():
            session.interactive()
            return 0
        else:
            session.run_text(stdin.read())
        out.flush()
        if session.errors and args.stop_on_error:
            return EXIT_FAILURE
        return 0
    finally:
        client.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
