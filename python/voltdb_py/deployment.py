# SPDX-License-Identifier: AGPL-3.0-or-later
"""VoltDB's ``deployment.xml``: strict parsing into frozen dataclasses, defaults, and back.

Names, types, defaults and ranges follow VoltDB's ``DeploymentFileSchema.xsd``
(voltdb-internals.md section 7). The file is parsed with ``defusedxml`` with DTDs,
entities and external references forbidden, so XML attacks fail before anything runs.
Every problem raises :class:`DeploymentError` naming the element, attribute and value.

Elements VoltDB knows but voltdb_py does not implement (export, import, dr, ssl, snmp,
topics, avro, threadpools, metrics, task, ...) are accepted, kept verbatim for
:meth:`Deployment.to_xml`, and reported with a :class:`DeploymentWarning` each.

Passwords (``<user password plaintext>``), as VoltDB handles them:

- ``plaintext="true"`` (the default): the attribute is the password itself; the login
  digests are SHA-1 and SHA-256 of its UTF-8 bytes.
- ``plaintext="false"``: the attribute is what ``voltdb mask`` writes, the SHA-1 hex digest
  (40 characters) followed by the SHA-256 hex digest (64 characters), 104 hex characters
  in all. A 40-character SHA-1-only value (older masks) is accepted too; such a user can
  only log in with the SHA-1 scheme.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import warnings
import xml.etree.ElementTree as _ET  # building output only; parsing goes through defusedxml
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET

from voltdb_py.errors import VoltError

__all__ = [
    "DeploymentError",
    "DeploymentWarning",
    "ClusterSettings",
    "PathsSettings",
    "HttpdSettings",
    "SecuritySettings",
    "User",
    "DiskLimit",
    "ResourceMonitorSettings",
    "SystemSettings",
    "SnapshotSettings",
    "CommandLogSettings",
    "Deployment",
    "parse_deployment",
    "default_deployment",
    "user_digests",
]

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
#: Partition ids are 14 bits (voltdb-internals.md section 6); sites per host cannot exceed that.
MAX_SITES_PER_HOST = 16382

#: Root elements VoltDB knows that voltdb_py accepts but ignores (with a warning).
UNIMPLEMENTED_ELEMENTS = frozenset({
    "export", "import", "dr", "ssl", "snmp", "topics", "avro", "threadpools", "metrics",
    "task", "compoundproc", "features",
})
#: ``<systemsettings>`` children VoltDB knows that voltdb_py accepts but ignores.
UNIMPLEMENTED_SYSTEMSETTINGS = frozenset({
    "flushinterval", "clockskew", "priorities", "compoundproc",
})


class DeploymentError(VoltError, ValueError):
    """The deployment file is malformed, unsafe, or breaks one of VoltDB's rules."""


class DeploymentWarning(UserWarning):
    """A deployment element VoltDB knows is accepted but not implemented by voltdb_py."""


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """``<cluster>``: sites per host, k-factor, optional host count and cluster id."""

    sites_per_host: int = 8
    kfactor: int = 0
    host_count: int | None = None
    schema: str = "ddl"
    cluster_id: int | None = None
    elastic: str = "enabled"


@dataclass(frozen=True, slots=True)
class PathsSettings:
    """``<paths>``: directories, relative ones under voltdbroot."""

    voltdbroot: str = "voltdbroot"
    snapshots: str = "snapshots"
    exportoverflow: str = "export_overflow"
    droverflow: str = "dr_overflow"
    commandlog: str = "command_log"
    commandlogsnapshot: str = "command_log_snapshot"


@dataclass(frozen=True, slots=True)
class HttpdSettings:
    """``<httpd>`` with ``<jsonapi>``."""

    enabled: bool = True
    port: int = 8080
    jsonapi_enabled: bool = True


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """``<security>``: off by default; provider ``hash`` (or ``kerberos``, not implemented)."""

    enabled: bool = False
    provider: str = "hash"


@dataclass(frozen=True, slots=True)
class User:
    """``<user>``: name, password (plain or masked, see :func:`user_digests`), roles."""

    name: str
    password: str
    roles: tuple[str, ...] = ()
    plaintext: bool = True

    def __repr__(self) -> str:  # never print a password
        return (f"User(name={self.name!r}, password='***', roles={self.roles!r}, "
                f"plaintext={self.plaintext!r})")


@dataclass(frozen=True, slots=True)
class DiskLimit:
    """``<disklimit><feature name size alert/>``."""

    name: str
    size: str | None = None
    alert: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceMonitorSettings:
    """``<resourcemonitor frequency>`` with ``<memorylimit>`` and ``<disklimit>``."""

    frequency_s: int = 60
    memorylimit_size: str = "80%"
    memorylimit_alert: str = "70%"
    disklimits: tuple[DiskLimit, ...] = ()


@dataclass(frozen=True, slots=True)
class SystemSettings:
    """``<systemsettings>``."""

    temptables_maxsize_mb: int = 100
    snapshot_priority: int = 6
    elastic_duration_ms: int = 50
    elastic_throughput_mb_s: int = 2
    query_timeout_ms: int = 10000
    procedure_warningtimeout_ms: int = 10000
    resourcemonitor: ResourceMonitorSettings = ResourceMonitorSettings()


@dataclass(frozen=True, slots=True)
class SnapshotSettings:
    """``<snapshot>``: automatic snapshots; off when the element is absent."""

    enabled: bool = False
    frequency: str = "24h"
    retain: int = 2
    prefix: str = "AUTOSNAP"

    @property
    def frequency_s(self) -> int:
        """The frequency in seconds."""
        n, unit = int(self.frequency[:-1]), self.frequency[-1]
        return n * {"s": 1, "m": 60, "h": 3600}[unit]


@dataclass(frozen=True, slots=True)
class CommandLogSettings:
    """``<commandlog>`` with ``<frequency>``; off when the element is absent."""

    enabled: bool = False
    synchronous: bool = False
    logsize_mb: int = 1024
    frequency_time_ms: int = 200
    frequency_transactions: int = INT_MAX


@dataclass(frozen=True)
class Deployment:
    """A whole deployment file. ``unimplemented`` keeps accepted-but-ignored elements as XML."""

    cluster: ClusterSettings = ClusterSettings()
    heartbeat_timeout_s: int = 90
    partition_detection: bool = True
    paths: PathsSettings = PathsSettings()
    httpd: HttpdSettings = HttpdSettings()
    security: SecuritySettings = SecuritySettings()
    users: tuple[User, ...] = ()
    systemsettings: SystemSettings = SystemSettings()
    snapshot: SnapshotSettings = SnapshotSettings()
    commandlog: CommandLogSettings = CommandLogSettings()
    readlevel: str = "safe"
    unimplemented: tuple[tuple[str, str], ...] = field(default=())

    def to_xml(self) -> str:
        """Serialize to deployment.xml text that :func:`parse_deployment` reads back equal."""
        return _to_xml(self)

    def user(self, name: str) -> User:
        """The user called ``name``; :class:`KeyError` if there is none."""
        for u in self.users:
            if u.name == name:
                return u
        raise KeyError(name)


def default_deployment() -> Deployment:
    """VoltDB's defaults: 8 sites per host, k=0, heartbeat 90 s, httpd 8080, security off."""
    return Deployment()


# ---------------------------------------------------------------------------------------
# Passwords
# ---------------------------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-fA-F]+")


def user_digests(user: User) -> tuple[bytes, bytes | None]:
    """``(sha1, sha256)`` digests a login is checked against; sha256 is None for SHA-1 masks.

    :raises DeploymentError: a masked password that is not 40 or 104 hex characters.
    """
    if user.plaintext:
        raw = user.password.encode("utf-8")
        return hashlib.sha1(raw).digest(), hashlib.sha256(raw).digest()
    return _masked_digests(user.name, user.password)


def _masked_digests(name: str, masked: str) -> tuple[bytes, bytes | None]:
    if not _HEX.fullmatch(masked) or len(masked) not in (40, 104):
        raise DeploymentError(
            f"deployment <users/user name={name!r}> attribute password: plaintext=\"false\" "
            f"needs the "
            f"40-character SHA-1 or 104-character SHA-1+SHA-256 hex mask written by "
            f"'voltdb mask', got {len(masked)} characters")
    sha1 = bytes.fromhex(masked[:40])
    sha256 = bytes.fromhex(masked[40:]) if len(masked) == 104 else None
    return sha1, sha256


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------

def _err(path: str, attr: str | None, value: Any, why: str) -> DeploymentError:
    where = f"<{path}>" + (f" attribute {attr}" if attr else "")
    shown = "" if value is None else f" value {value!r}"
    return DeploymentError(f"deployment {where}{shown}: {why}")


def _parse_int(path: str, attr: str, text: str, lo: int = INT_MIN, hi: int = INT_MAX) -> int:
    s = text.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", s):
        raise _err(path, attr, text, "not an integer")
    v = int(s)
    if not INT_MIN <= v <= INT_MAX:
        raise _err(path, attr, text, "outside the 32-bit integer range")
    if not lo <= v <= hi:
        rng = f">= {lo}" if hi == INT_MAX else f"between {lo} and {hi}"
        raise _err(path, attr, text, f"must be {rng}")
    return v


def _parse_bool(path: str, attr: str, text: str) -> bool:
    s = text.strip()
    if s in ("true", "1"):
        return True
    if s in ("false", "0"):
        return False
    raise _err(path, attr, text, "not a boolean (true, false, 1 or 0)")


def _parse_enum(path: str, attr: str, text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise _err(path, attr, text, f"must be one of {', '.join(choices)}")
    return text


def _parse_name(path: str, attr: str, text: str) -> str:
    if not re.fullmatch(r"\S+", text):
        raise _err(path, attr, text, "must be non-empty with no whitespace")
    return text


def _parse_percent_or_size(path: str, attr: str, text: str) -> str:
    # VoltDB's resource limits: "NN%" or an absolute size in GB ("NN" or "NN.N").
    if not re.fullmatch(r"\s*([0-9]+(\.[0-9]+)?%?)\s*", text):
        raise _err(path, attr, text, "must be a percentage like '80%' or a size in GB")
    return text.strip()


class _Elem:
    """Checks one element's attributes and children against what it allows."""

    def __init__(self, el: Any, path: str, attrs: set[str], children: set[str] = frozenset(),
                 repeat: set[str] = frozenset()) -> None:
        self.el = el
        self.path = path
        for name, value in el.attrib.items():
            if name not in attrs:
                raise _err(path, name, value, "unknown attribute")
        if el.text and el.text.strip():
            raise _err(path, None, el.text.strip(), "text is not allowed here")
        self.children: dict[str, list[Any]] = {}
        for child in el:
            tag = child.tag
            if not isinstance(tag, str):  # comments and processing instructions
                continue
            if child.tail and child.tail.strip():
                raise _err(path, None, child.tail.strip(), "text is not allowed here")
            if tag not in children:
                raise _err(f"{path}/{tag}", None, None, f"unknown element in <{path}>")
            if self.children.get(tag) and tag not in repeat:
                raise _err(f"{path}/{tag}", None, None, "may appear only once")
            self.children.setdefault(tag, []).append(child)

    def get(self, name: str, conv: Callable[[str, str, str], Any], default: Any) -> Any:
        text = self.el.attrib.get(name)
        return default if text is None else conv(self.path, name, text)

    def require(self, name: str) -> str:
        text = self.el.attrib.get(name)
        if text is None:
            raise _err(self.path, name, None, "required attribute is missing")
        return text

    def child(self, tag: str) -> Any | None:
        found = self.children.get(tag)
        return found[0] if found else None


def _int(lo: int = INT_MIN, hi: int = INT_MAX) -> Callable[[str, str, str], int]:
    return lambda path, attr, text: _parse_int(path, attr, text, lo, hi)


def _str(path: str, attr: str, text: str) -> str:
    return text


def _enum(*choices: str) -> Callable[[str, str, str], str]:
    return lambda path, attr, text: _parse_enum(path, attr, text, choices)


_ROOT_CHILDREN = {
    "cluster", "paths", "partition-detection", "heartbeat", "httpd", "snapshot", "users",
    "commandlog", "systemsettings", "security", "consistency",
} | UNIMPLEMENTED_ELEMENTS


def _read_source(text_or_path: str | bytes | os.PathLike[str]) -> bytes | str:
    if isinstance(text_or_path, bytes):
        return text_or_path
    if isinstance(text_or_path, str) and text_or_path.lstrip().startswith("<"):
        return text_or_path
    if isinstance(text_or_path, (str, os.PathLike)):
        try:
            return Path(text_or_path).read_bytes()
        except OSError as exc:
            raise DeploymentError(f"cannot read deployment file {str(text_or_path)!r}: "
                                  f"{exc.strerror or exc}") from exc
    raise DeploymentError(f"expected XML text, bytes or a path, got {type(text_or_path).__name__}")


def parse_deployment(text_or_path: str | bytes | os.PathLike[str]) -> Deployment:
    """Parse a deployment.xml (text, bytes or a path) strictly.

    :raises DeploymentError: unreadable file, invalid or unsafe XML (DTDs and entities are
        refused), unknown elements or attributes, wrong types, out-of-range values, or
        broken cross-checks (security without an administrator, duplicate users).
    :returns: the :class:`Deployment`; unimplemented known elements warn with
        :class:`DeploymentWarning`.
    """
    data = _read_source(text_or_path)
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise DeploymentError(f"deployment XML refused as unsafe: {exc}") from exc
    except _ET.ParseError as exc:
        raise DeploymentError(f"deployment is not well-formed XML: {exc}") from exc
    if root.tag != "deployment":
        raise _err(str(root.tag), None, None, "the root element must be <deployment>")
    top = _Elem(root, "deployment", set(), _ROOT_CHILDREN)

    cl_el = top.child("cluster")
    if cl_el is None:
        raise _err("deployment/cluster", None, None, "required element is missing")
    cl = _Elem(cl_el, "cluster", {"hostcount", "sitesperhost", "kfactor", "id", "elastic",
                                  "schema"})
    cluster = ClusterSettings(
        sites_per_host=cl.get("sitesperhost", _int(1, MAX_SITES_PER_HOST), 8),
        kfactor=cl.get("kfactor", _int(0, MAX_SITES_PER_HOST), 0),
        host_count=cl.get("hostcount", _int(1), None),
        schema=cl.get("schema", _enum("ddl", "catalog"), "ddl"),
        cluster_id=cl.get("id", _int(0, 127), None),
        elastic=cl.get("elastic", _enum("enabled", "disabled"), "enabled"),
    )
    if cluster.host_count is not None and cluster.kfactor + 1 > cluster.host_count:
        raise _err("cluster", "kfactor", str(cluster.kfactor),
                   f"needs at least kfactor+1 = {cluster.kfactor + 1} hosts but hostcount is "
                   f"{cluster.host_count}")

    heartbeat = 90
    if (el := top.child("heartbeat")) is not None:
        heartbeat = _Elem(el, "heartbeat", {"timeout"}).get("timeout", _int(1), 90)

    ppd = True
    if (el := top.child("partition-detection")) is not None:
        # the older schema's <snapshot prefix> child is still accepted
        e = _Elem(el, "partition-detection", {"enabled"}, {"snapshot"})
        if (snap := e.child("snapshot")) is not None:
            _Elem(snap, "partition-detection/snapshot", {"prefix"})
        ppd = e.get("enabled", _parse_bool, True)

    paths = PathsSettings()
    if (el := top.child("paths")) is not None:
        names = [f.name for f in dataclasses.fields(PathsSettings)]
        e = _Elem(el, "paths", set(), set(names))
        values = {}
        for name in names:
            if (c := e.child(name)) is not None:
                p = _Elem(c, f"paths/{name}", {"path"}).get("path", _str, None)
                if p is None or not p.strip():
                    raise _err(f"paths/{name}", "path", p, "a non-empty path is required")
                values[name] = p
        paths = PathsSettings(**values)

    httpd = HttpdSettings()
    if (el := top.child("httpd")) is not None:
        e = _Elem(el, "httpd", {"port", "enabled"}, {"jsonapi"})
        jsonapi = True
        if (c := e.child("jsonapi")) is not None:
            jsonapi = _Elem(c, "httpd/jsonapi", {"enabled"}).get("enabled", _parse_bool, True)
        httpd = HttpdSettings(e.get("enabled", _parse_bool, True),
                              e.get("port", _int(1, 65535), 8080), jsonapi)

    security = SecuritySettings()
    if (el := top.child("security")) is not None:
        e = _Elem(el, "security", {"enabled", "provider"})
        security = SecuritySettings(e.get("enabled", _parse_bool, False),
                                    e.get("provider", _enum("hash", "kerberos"), "hash"))

    users: list[User] = []
    if (el := top.child("users")) is not None:
        e = _Elem(el, "users", set(), {"user"}, {"user"})
        if not e.children.get("user"):
            raise _err("users/user", None, None, "<users> needs at least one <user>")
        for u_el in e.children["user"]:
            u = _Elem(u_el, "users/user", {"name", "roles", "password", "plaintext"})
            name = _parse_name("users/user", "name", u.require("name"))
            password = u.require("password")
            roles_text = u.get("roles", _str, "")
            roles = tuple(r.strip() for r in roles_text.split(",") if r.strip())
            plaintext = u.get("plaintext", _parse_bool, True)
            user = User(name, password, roles, plaintext)
            if not plaintext:
                _masked_digests(name, password)
            if any(x.name.lower() == name.lower() for x in users):
                raise _err("users/user", "name", name, "duplicate user name")
            users.append(user)
    if security.enabled and security.provider == "hash" and not any(
            "administrator" in (r.lower() for r in u.roles) for u in users):
        raise _err("security", "enabled", "true",
                   "security needs at least one user in the built-in ADMINISTRATOR role")

    sysset = SystemSettings()
    if (el := top.child("systemsettings")) is not None:
        sysset = _parse_systemsettings(el)

    snapshot = SnapshotSettings()
    if (el := top.child("snapshot")) is not None:
        e = _Elem(el, "snapshot", {"frequency", "retain", "prefix", "enabled"})
        freq = e.get("frequency", _str, "24h").strip()
        if not re.fullmatch(r"[0-9]+[smh]", freq) or int(freq[:-1]) < 1:
            raise _err("snapshot", "frequency", freq,
                       "must be a positive count with unit s, m or h, like '24h'")
        prefix = e.get("prefix", _str, "AUTOSNAP")
        if not prefix or re.search(r"[\s/\\,-]", prefix):
            raise _err("snapshot", "prefix", prefix,
                       "must be non-empty without whitespace, '/', '\\', ',' or '-'")
        snapshot = SnapshotSettings(e.get("enabled", _parse_bool, True), freq,
                                    e.get("retain", _int(1, 5000), 2), prefix)

    commandlog = CommandLogSettings()
    if (el := top.child("commandlog")) is not None:
        e = _Elem(el, "commandlog", {"enabled", "synchronous", "logsize"}, {"frequency"})
        time_ms, txns = 200, INT_MAX
        if (c := e.child("frequency")) is not None:
            f = _Elem(c, "commandlog/frequency", {"time", "transactions"})
            time_ms = f.get("time", _int(1, 5000), 200)
            txns = f.get("transactions", _int(1, INT_MAX), INT_MAX)
        commandlog = CommandLogSettings(e.get("enabled", _parse_bool, True),
                                        e.get("synchronous", _parse_bool, False),
                                        e.get("logsize", _int(3, 102400), 1024), time_ms, txns)

    readlevel = "safe"
    if (el := top.child("consistency")) is not None:
        readlevel = _Elem(el, "consistency", {"readlevel"}).get(
            "readlevel", _enum("safe", "fast"), "safe")

    unimplemented = []
    for tag in sorted(UNIMPLEMENTED_ELEMENTS):
        if (el := top.child(tag)) is not None:
            warnings.warn(DeploymentWarning(
                f"deployment element <{tag}> is accepted but not implemented by voltdb_py; "
                "it is ignored"), stacklevel=2)
            _strip_whitespace(el)
            unimplemented.append((tag, _ET.tostring(el, encoding="unicode")))

    return Deployment(cluster, heartbeat, ppd, paths, httpd, security, tuple(users), sysset,
                      snapshot, commandlog, readlevel, tuple(unimplemented))


def _strip_whitespace(el: Any) -> None:
    """Drop whitespace-only text and tails so a kept element serializes the same each time."""
    for e in el.iter():
        if e.text is not None and not e.text.strip():
            e.text = None
        if e.tail is not None and not e.tail.strip():
            e.tail = None
    el.tail = None


def _parse_systemsettings(el: Any) -> SystemSettings:
    known = {"temptables", "snapshot", "elastic", "query", "procedure", "resourcemonitor"}
    e = _Elem(el, "systemsettings", set(), known | UNIMPLEMENTED_SYSTEMSETTINGS)
    v: dict[str, Any] = {}
    if (c := e.child("temptables")) is not None:
        v["temptables_maxsize_mb"] = _Elem(c, "systemsettings/temptables", {"maxsize"}).get(
            "maxsize", _int(1), 100)
    if (c := e.child("snapshot")) is not None:
        # the schema says >= 0; VoltDB documents 0 (no throttle) to 10 (lowest priority)
        v["snapshot_priority"] = _Elem(c, "systemsettings/snapshot", {"priority"}).get(
            "priority", _int(0, 10), 6)
    if (c := e.child("elastic")) is not None:
        x = _Elem(c, "systemsettings/elastic", {"duration", "throughput"})
        v["elastic_duration_ms"] = x.get("duration", _int(1), 50)
        v["elastic_throughput_mb_s"] = x.get("throughput", _int(1), 2)
    if (c := e.child("query")) is not None:
        v["query_timeout_ms"] = _Elem(c, "systemsettings/query", {"timeout"}).get(
            "timeout", _int(0), 10000)
    if (c := e.child("procedure")) is not None:
        v["procedure_warningtimeout_ms"] = _Elem(
            c, "systemsettings/procedure", {"warningtimeout"}).get("warningtimeout", _int(0),
                                                                   10000)
    if (c := e.child("resourcemonitor")) is not None:
        path = "systemsettings/resourcemonitor"
        x = _Elem(c, path, {"frequency"}, {"memorylimit", "disklimit"})
        size, alert = "80%", "70%"
        if (m := x.child("memorylimit")) is not None:
            me = _Elem(m, f"{path}/memorylimit", {"size", "alert"})
            size = me.get("size", _parse_percent_or_size, "80%")
            alert = me.get("alert", _parse_percent_or_size, "70%")
        disks = []
        if (d := x.child("disklimit")) is not None:
            de = _Elem(d, f"{path}/disklimit", set(), {"feature"}, {"feature"})
            for f in de.children.get("feature", []):
                fe = _Elem(f, f"{path}/disklimit/feature", {"name", "size", "alert"})
                name = _parse_enum(f"{path}/disklimit/feature", "name", fe.require("name"),
                                   ("snapshots", "exportoverflow", "droverflow", "commandlog",
                                    "commandlogsnapshot", "topicsdata"))
                if any(dl.name == name for dl in disks):
                    raise _err(f"{path}/disklimit/feature", "name", name, "duplicate feature")
                disks.append(DiskLimit(name, fe.get("size", _parse_percent_or_size, None),
                                       fe.get("alert", _parse_percent_or_size, None)))
        v["resourcemonitor"] = ResourceMonitorSettings(x.get("frequency", _int(1), 60), size,
                                                       alert, tuple(disks))
    for tag in sorted(UNIMPLEMENTED_SYSTEMSETTINGS):
        if e.child(tag) is not None:
            warnings.warn(DeploymentWarning(
                f"deployment element <systemsettings><{tag}> is accepted but not implemented "
                "by voltdb_py; it is ignored"), stacklevel=3)
    return SystemSettings(**v)


# ---------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------

def _b(v: bool) -> str:
    return "true" if v else "false"


def _to_xml(d: Deployment) -> str:
    root = _ET.Element("deployment")
    c = d.cluster
    attrs = {"sitesperhost": str(c.sites_per_host), "kfactor": str(c.kfactor),
             "schema": c.schema, "elastic": c.elastic}
    if c.host_count is not None:
        attrs["hostcount"] = str(c.host_count)
    if c.cluster_id is not None:
        attrs["id"] = str(c.cluster_id)
    _ET.SubElement(root, "cluster", attrs)
    _ET.SubElement(root, "heartbeat", timeout=str(d.heartbeat_timeout_s))
    _ET.SubElement(root, "partition-detection", enabled=_b(d.partition_detection))
    paths = _ET.SubElement(root, "paths")
    for f in dataclasses.fields(PathsSettings):
        _ET.SubElement(paths, f.name, path=getattr(d.paths, f.name))
    h = _ET.SubElement(root, "httpd", enabled=_b(d.httpd.enabled), port=str(d.httpd.port))
    _ET.SubElement(h, "jsonapi", enabled=_b(d.httpd.jsonapi_enabled))
    _ET.SubElement(root, "security", enabled=_b(d.security.enabled),
                   provider=d.security.provider)
    if d.users:
        users = _ET.SubElement(root, "users")
        for u in d.users:
            attrs = {"name": u.name, "password": u.password, "plaintext": _b(u.plaintext)}
            if u.roles:
                attrs["roles"] = ",".join(u.roles)
            _ET.SubElement(users, "user", attrs)
    s = d.systemsettings
    ss = _ET.SubElement(root, "systemsettings")
    _ET.SubElement(ss, "temptables", maxsize=str(s.temptables_maxsize_mb))
    _ET.SubElement(ss, "snapshot", priority=str(s.snapshot_priority))
    _ET.SubElement(ss, "elastic", duration=str(s.elastic_duration_ms),
                   throughput=str(s.elastic_throughput_mb_s))
    _ET.SubElement(ss, "query", timeout=str(s.query_timeout_ms))
    _ET.SubElement(ss, "procedure", warningtimeout=str(s.procedure_warningtimeout_ms))
    rm = s.resourcemonitor
    rme = _ET.SubElement(ss, "resourcemonitor", frequency=str(rm.frequency_s))
    _ET.SubElement(rme, "memorylimit", size=rm.memorylimit_size, alert=rm.memorylimit_alert)
    if rm.disklimits:
        dl = _ET.SubElement(rme, "disklimit")
        for f in rm.disklimits:
            attrs = {"name": f.name}
            if f.size is not None:
                attrs["size"] = f.size
            if f.alert is not None:
                attrs["alert"] = f.alert
            _ET.SubElement(dl, "feature", attrs)
    sn = d.snapshot
    _ET.SubElement(root, "snapshot", enabled=_b(sn.enabled), frequency=sn.frequency,
                   retain=str(sn.retain), prefix=sn.prefix)
    cl = d.commandlog
    cle = _ET.SubElement(root, "commandlog", enabled=_b(cl.enabled),
                         synchronous=_b(cl.synchronous), logsize=str(cl.logsize_mb))
    _ET.SubElement(cle, "frequency", time=str(cl.frequency_time_ms),
                   transactions=str(cl.frequency_transactions))
    _ET.SubElement(root, "consistency", readlevel=d.readlevel)
    for _tag, text in d.unimplemented:
        root.append(SafeET.fromstring(text, forbid_dtd=True))
    _ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _ET.tostring(root, encoding="unicode") + "\n"
