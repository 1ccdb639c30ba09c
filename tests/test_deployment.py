# SPDX-License-Identifier: AGPL-3.0-or-later
"""deployment.xml: defaults, strict parsing, typed errors, XML attacks, round trip, passwords."""

import hashlib
import warnings
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voltdb_py.deployment import (
    ClusterSettings,
    CommandLogSettings,
    Deployment,
    DeploymentError,
    DeploymentWarning,
    DiskLimit,
    HttpdSettings,
    PathsSettings,
    ResourceMonitorSettings,
    SecuritySettings,
    SnapshotSettings,
    SystemSettings,
    User,
    default_deployment,
    parse_deployment,
    user_digests,
)
from voltdb_py.errors import VoltError

DATA = Path(__file__).parent / "data" / "deployments"
MINIMAL = '<deployment><cluster/></deployment>'


def test_defaults_are_voltdbs():
    d = parse_deployment(MINIMAL)
    assert d == default_deployment()
    assert d.cluster.sites_per_host == 8
    assert d.cluster.kfactor == 0
    assert d.cluster.host_count is None
    assert d.heartbeat_timeout_s == 90
    assert d.partition_detection is True
    assert d.paths.voltdbroot == "voltdbroot"
    assert d.paths.commandlog == "command_log"
    assert d.paths.commandlogsnapshot == "command_log_snapshot"
    assert d.httpd == HttpdSettings(enabled=True, port=8080, jsonapi_enabled=True)
    assert d.security == SecuritySettings(enabled=False, provider="hash")
    s = d.systemsettings
    assert (s.elastic_duration_ms, s.elastic_throughput_mb_s) == (50, 2)
    assert (s.temptables_maxsize_mb, s.snapshot_priority) == (100, 6)
    assert (s.query_timeout_ms, s.procedure_warningtimeout_ms) == (10000, 10000)
    assert s.resourcemonitor == ResourceMonitorSettings(60, "80%", "70%", ())
    assert d.commandlog.frequency_time_ms == 200
    assert d.commandlog.frequency_transactions == 2**31 - 1
    assert d.commandlog.logsize_mb == 1024
    assert d.readlevel == "safe"


def test_present_but_empty_elements_take_schema_defaults():
    d = parse_deployment('<deployment><cluster/><snapshot/><commandlog/><httpd/>'
                         '<systemsettings><elastic/></systemsettings></deployment>')
    # the XSD's attribute defaults apply once the element is there
    assert d.snapshot == SnapshotSettings(True, "24h", 2, "AUTOSNAP")
    assert d.snapshot.frequency_s == 86400
    assert d.commandlog == CommandLogSettings(True, False, 1024, 200, 2**31 - 1)
    assert d.httpd.port == 8080
    assert d.systemsettings.elastic_duration_ms == 50


def test_full_fixture():
    d = parse_deployment(DATA / "full.xml")
    assert d.cluster == ClusterSettings(4, 1, 3, "ddl", 7, "enabled")
    assert d.heartbeat_timeout_s == 30
    assert d.partition_detection is False
    assert d.paths == PathsSettings("/var/voltdb", "snaps", "export_overflow", "dr_overflow",
                                    "cl", "clsnap")
    assert d.httpd == HttpdSettings(True, 8181, False)
    assert d.security.enabled
    assert [u.name for u in d.users] == ["admin", "app"]
    assert d.user("app").roles == ("user", "ops")
    assert d.user("app").plaintext is False
    assert d.systemsettings == SystemSettings(
        200, 3, 100, 10, 5000, 2000,
        ResourceMonitorSettings(30, "90%", "85%",
                                (DiskLimit("snapshots", "75%", "60%"),
                                 DiskLimit("commandlog", "20", None))))
    assert d.snapshot == SnapshotSettings(True, "30m", 5, "NIGHTLY")
    assert d.snapshot.frequency_s == 1800
    assert d.commandlog == CommandLogSettings(True, True, 2048, 100, 1000)
    assert d.readlevel == "fast"
    assert d.unimplemented == ()


def test_accepts_path_str_bytes_and_text():
    p = DATA / "full.xml"
    a = parse_deployment(p)
    assert parse_deployment(str(p)) == a
    assert parse_deployment(p.read_bytes()) == a
    assert parse_deployment(p.read_text()) == a


@pytest.mark.parametrize("name", ["full.xml", "unimplemented.xml"])
def test_fixture_round_trip(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeploymentWarning)
        d = parse_deployment(DATA / name)
        assert parse_deployment(d.to_xml()) == d


def test_unimplemented_elements_warn_by_name_and_survive_round_trip():
    with pytest.warns(DeploymentWarning) as rec:
        d = parse_deployment(DATA / "unimplemented.xml")
    messages = " ".join(str(w.message) for w in rec)
    for tag in ("<export>", "<dr>", "<ssl>", "<snmp>", "<systemsettings><flushinterval>"):
        assert tag in messages
    assert [t for t, _ in d.unimplemented] == ["dr", "export", "snmp", "ssl"]
    assert d.cluster.sites_per_host == 2
    xml = d.to_xml()
    assert '<property name="nonce">arch</property>' in xml
    with pytest.warns(DeploymentWarning):
        assert parse_deployment(xml).unimplemented == d.unimplemented


def test_no_warning_without_unimplemented_elements():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_deployment(DATA / "full.xml")


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_xml_attacks_are_refused(name):
    with pytest.raises(DeploymentError, match="unsafe"):
        parse_deployment(DATA / name)


def test_internal_entity_without_dtd_is_not_expanded():
    with pytest.raises(DeploymentError):
        parse_deployment('<deployment><cluster sitesperhost="&x;"/></deployment>')


BAD = [
    # (xml, words the message must contain)
    ("<deployment", ["well-formed"]),
    ("<deploymentx><cluster/></deploymentx>", ["deploymentx", "root"]),
    ("<deployment/>", ["cluster", "required"]),
    ("<deployment><cluster/><cluster/></deployment>", ["cluster", "once"]),
    ("<deployment><cluster/><bogus/></deployment>", ["bogus", "unknown element"]),
    ('<deployment><cluster colour="red"/></deployment>', ["cluster", "colour", "'red'"]),
    ('<deployment><cluster sitesperhost="eight"/></deployment>',
     ["cluster", "sitesperhost", "'eight'", "integer"]),
    ('<deployment><cluster sitesperhost="0"/></deployment>', ["sitesperhost", "'0'"]),
    ('<deployment><cluster sitesperhost="99999999999"/></deployment>', ["32-bit"]),
    ('<deployment><cluster kfactor="-1"/></deployment>', ["kfactor", "'-1'"]),
    ('<deployment><cluster kfactor="2" hostcount="2"/></deployment>', ["kfactor", "hostcount"]),
    ('<deployment><cluster id="128"/></deployment>', ["cluster", "id", "'128'", "127"]),
    ('<deployment><cluster schema="xml"/></deployment>', ["schema", "'xml'"]),
    ('<deployment><cluster/><heartbeat timeout="0"/></deployment>', ["heartbeat", "timeout"]),
    ('<deployment><cluster/><partition-detection enabled="yes"/></deployment>',
     ["partition-detection", "enabled", "'yes'", "boolean"]),
    ('<deployment><cluster/><httpd port="70000"/></deployment>', ["httpd", "port", "70000"]),
    ('<deployment><cluster/><httpd><jsonapi enabled="maybe"/></httpd></deployment>',
     ["httpd/jsonapi", "enabled"]),
    ('<deployment><cluster/><paths><tmp path="x"/></paths></deployment>', ["paths/tmp"]),
    ('<deployment><cluster/><paths><snapshots path=""/></paths></deployment>',
     ["paths/snapshots", "path"]),
    ('<deployment><cluster/><security provider="ldap"/></deployment>',
     ["security", "provider", "'ldap'"]),
    ('<deployment><cluster/><security enabled="true"/></deployment>',
     ["security", "ADMINISTRATOR"]),
    ('<deployment><cluster/><users/></deployment>', ["users/user"]),
    ('<deployment><cluster/><users><user name="a"/></users></deployment>',
     ["users/user", "password", "missing"]),
    ('<deployment><cluster/><users><user name="a b" password="x"/></users></deployment>',
     ["users/user", "name", "'a b'"]),
    ('<deployment><cluster/><users><user name="a" password="x"/><user name="A" password="y"/>'
     '</users></deployment>', ["duplicate", "'A'"]),
    ('<deployment><cluster/><users><user name="a" password="abc" plaintext="false"/></users>'
     '</deployment>', ["users/user", "password", "hex"]),
    ('<deployment><cluster/><systemsettings><elastic duration="0"/></systemsettings>'
     '</deployment>', ["systemsettings/elastic", "duration", "'0'"]),
    ('<deployment><cluster/><systemsettings><elastic throughput="fast"/></systemsettings>'
     '</deployment>', ["systemsettings/elastic", "throughput", "'fast'"]),
    ('<deployment><cluster/><systemsettings><snapshot priority="11"/></systemsettings>'
     '</deployment>', ["systemsettings/snapshot", "priority", "'11'"]),
    ('<deployment><cluster/><systemsettings><temptables maxsize="0"/></systemsettings>'
     '</deployment>', ["temptables", "maxsize"]),
    ('<deployment><cluster/><systemsettings><query timeout="-5"/></systemsettings>'
     '</deployment>', ["systemsettings/query", "timeout", "'-5'"]),
    ('<deployment><cluster/><systemsettings><resourcemonitor><memorylimit size="lots"/>'
     '</resourcemonitor></systemsettings></deployment>', ["memorylimit", "size", "'lots'"]),
    ('<deployment><cluster/><systemsettings><resourcemonitor><disklimit>'
     '<feature name="tmp"/></disklimit></resourcemonitor></systemsettings></deployment>',
     ["disklimit/feature", "name", "'tmp'"]),
    ('<deployment><cluster/><snapshot frequency="daily"/></deployment>',
     ["snapshot", "frequency", "'daily'"]),
    ('<deployment><cluster/><snapshot retain="0"/></deployment>', ["snapshot", "retain"]),
    ('<deployment><cluster/><snapshot prefix="a-b"/></deployment>', ["snapshot", "prefix"]),
    ('<deployment><cluster/><commandlog logsize="2"/></deployment>',
     ["commandlog", "logsize", "'2'", "between 3 and 102400"]),
    ('<deployment><cluster/><commandlog><frequency time="5001"/></commandlog></deployment>',
     ["commandlog/frequency", "time", "'5001'"]),
    ('<deployment><cluster/><commandlog><frequency transactions="0"/></commandlog>'
     '</deployment>', ["commandlog/frequency", "transactions"]),
    ('<deployment><cluster/><consistency readlevel="eventual"/></deployment>',
     ["consistency", "readlevel", "'eventual'"]),
    ('<deployment><cluster>text</cluster></deployment>', ["cluster", "text"]),
]


@pytest.mark.parametrize(("xml", "words"), BAD)
def test_bad_input_raises_typed_error_naming_the_problem(xml, words):
    with pytest.raises(DeploymentError) as info:
        parse_deployment(xml)
    assert isinstance(info.value, VoltError)
    for w in words:
        assert w in str(info.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(DeploymentError, match="cannot read"):
        parse_deployment(tmp_path / "nope.xml")


def test_wrong_argument_type():
    with pytest.raises(DeploymentError):
        parse_deployment(42)  # type: ignore[arg-type]


def test_comments_are_ignored():
    d = parse_deployment('<deployment><!-- c --><cluster kfactor="1"/><!-- d --></deployment>')
    assert d.cluster.kfactor == 1


def test_xsd_boolean_and_int_lexical_forms():
    d = parse_deployment('<deployment><cluster sitesperhost=" +6 "/>'
                         '<partition-detection enabled="0"/><httpd enabled="1"/></deployment>')
    assert d.cluster.sites_per_host == 6
    assert d.partition_detection is False
    assert d.httpd.enabled is True


# -- passwords ---------------------------------------------------------------------------

def test_plaintext_digests():
    sha1, sha256 = user_digests(User("u", "password"))
    assert sha1 == hashlib.sha1(b"password").digest()
    assert sha256 == hashlib.sha256(b"password").digest()


def test_masked_digests_match_plaintext():
    d = parse_deployment(DATA / "full.xml")
    assert user_digests(d.user("app")) == user_digests(User("x", "password"))


def test_sha1_only_mask():
    mask = hashlib.sha1(b"pw").hexdigest()
    assert user_digests(User("u", mask, plaintext=False)) == (hashlib.sha1(b"pw").digest(), None)


def test_bad_mask_raises():
    with pytest.raises(DeploymentError, match="hex"):
        user_digests(User("u", "z" * 104, plaintext=False))


def test_user_repr_hides_password():
    assert "secret" not in repr(User("u", "secret"))


@given(st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s))
def test_plaintext_and_mask_agree(pw):
    mask = (hashlib.sha1(pw.encode()).hexdigest() + hashlib.sha256(pw.encode()).hexdigest())
    assert user_digests(User("u", mask, plaintext=False)) == user_digests(User("u", pw))


# -- properties --------------------------------------------------------------------------

_path = st.text(alphabet="abcxyz_/.0123", min_size=1, max_size=12).filter(lambda s: s.strip())
_pct = st.integers(1, 100).map(lambda n: f"{n}%") | st.integers(1, 64).map(str)
_name = st.text(alphabet="abcdefXYZ0123_", min_size=1, max_size=8)

deployments = st.builds(
    Deployment,
    cluster=st.builds(ClusterSettings, st.integers(1, 64), st.integers(0, 4),
                      st.none() | st.integers(5, 100), st.sampled_from(["ddl", "catalog"]),
                      st.none() | st.integers(0, 127), st.sampled_from(["enabled", "disabled"])),
    heartbeat_timeout_s=st.integers(1, 10**6),
    partition_detection=st.booleans(),
    paths=st.builds(PathsSettings, _path, _path, _path, _path, _path, _path),
    httpd=st.builds(HttpdSettings, st.booleans(), st.integers(1, 65535), st.booleans()),
    security=st.just(SecuritySettings()),
    users=st.lists(st.builds(User, _name, st.text(min_size=0, max_size=10).filter(
        lambda s: "\x00" not in s and all(c.isprintable() for c in s)),
        st.lists(_name, max_size=3).map(tuple)), max_size=3,
        unique_by=lambda u: u.name.lower()).map(tuple),
    systemsettings=st.builds(
        SystemSettings, st.integers(1, 10**5), st.integers(0, 10), st.integers(1, 10**4),
        st.integers(1, 10**4), st.integers(0, 10**7), st.integers(0, 10**7),
        st.builds(ResourceMonitorSettings, st.integers(1, 3600), _pct, _pct,
                  st.lists(st.builds(DiskLimit, st.sampled_from(["snapshots", "commandlog"]),
                                     st.none() | _pct, st.none() | _pct),
                           max_size=2, unique_by=lambda d: d.name).map(tuple))),
    snapshot=st.builds(SnapshotSettings, st.booleans(),
                       st.tuples(st.integers(1, 999), st.sampled_from("smh")).map(
                           lambda t: f"{t[0]}{t[1]}"),
                       st.integers(1, 5000), _name),
    commandlog=st.builds(CommandLogSettings, st.booleans(), st.booleans(),
                         st.integers(3, 102400), st.integers(1, 5000),
                         st.integers(1, 2**31 - 1)),
    readlevel=st.sampled_from(["safe", "fast"]),
)


@given(deployments)
def test_to_xml_round_trip(d):
    assert parse_deployment(d.to_xml()) == d


@given(st.integers(-(2**40), 2**40))
def test_logsize_range_is_enforced(n):
    xml = f'<deployment><cluster/><commandlog logsize="{n}"/></deployment>'
    if 3 <= n <= 102400:
        assert parse_deployment(xml).commandlog.logsize_mb == n
    else:
        with pytest.raises(DeploymentError, match="logsize"):
            parse_deployment(xml)


@given(st.text(max_size=12))
def test_arbitrary_attribute_text_never_escapes_as_another_error(text):
    esc = (text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"))
    xml = f'<deployment><cluster kfactor="{esc}"/></deployment>'
    try:
        d = parse_deployment(xml)
    except DeploymentError as exc:
        assert "kfactor" in str(exc) or "well-formed" in str(exc)
    else:
        assert d.cluster.kfactor == int(text.strip())
