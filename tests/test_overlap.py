"""`tlsprobe overlap`: partner profiles, IBM MQ's alias matrix, and real peers.

* Profile vs profile reproduces every cell of IBM's alias outcome matrix (vendor-codes.md §1a),
  with the shipped MQ channel profiles and with ``mq:SSLCIPH`` values.
* Endpoint vs endpoint against two ``openssl s_server`` with different lists equals the set
  intersection of their configured lists (each list first confirmed by a scan).
* Endpoint vs profile against a ``gnutls-serv`` configured like a legacy partner reports the
  suite gnutls really picks, cross-checked with ``gnutls-cli`` offering the same suites.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from peers import Peer, gnutls_server, openssl_args, openssl_server
from probing import schema

from probe import overlap as ov
from probe.errors import InputError
from probe.overlap import OverlapResult, run_overlap
from probe.pki import TestPKI
from probe.profiles import load_profile, profile_names
from probe.result import to_jsonable
from probe.scan import ScanOptions, scan
from probe.target import Target
from probe.wire import registry


def overlap_schema() -> dict[str, Any]:
    return schema("overlap")


def check(result: OverlapResult) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(to_jsonable(result)))
    jsonschema.validate(doc, overlap_schema())
    return doc


def tlsprobe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "probe", *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def codes(entries: tuple[ov.SuiteEntry, ...]) -> set[str]:
    return {e.code for e in entries}


def hexes(names: str) -> set[str]:
    out = set()
    for n in names.split(":"):
        s = registry.find_suite(n)
        assert s is not None, n
        out.add(s.hex)
    return out


# -- shipped profiles ---------------------------------------------------------------------------

REQUIRED_PROFILES = {
    "mq-any", "mq-any-tls12", "mq-any-tls12-or-higher", "mq-any-tls13", "mq-any-tls13-or-higher",
    "mq-ecdhe-rsa-aes-128-gcm-sha256", "mq-tls-aes-256-gcm-sha384", "zos-attls-tls11",
    "ibmi-v5r4", "cft-3.1", "java8", "openssl-1.0.2", "mozilla-modern", "mozilla-intermediate",
    "mozilla-old",
}  # fmt: skip


def test_shipped_profiles_load_and_cite_their_source() -> None:
    assert set(profile_names()) >= REQUIRED_PROFILES
    for name in profile_names():
        p = load_profile(name)
        assert p.description and p.source, name
        assert p.client.versions and p.client.suites and p.server.suites, name


def test_legacy_profiles_say_what_the_brief_says() -> None:
    cft = load_profile("cft-3.1")
    assert [s.code for s in cft.client.suites] == [47, 10, 9, 1, 2]
    zos = load_profile("zos-attls-tls11")
    assert zos.server.versions == (0x0301, 0x0302)
    assert [s.code for s in zos.server.suites] == [0x0A, 0x2F, 0x35]
    assert load_profile("ibmi-v5r4").server.versions == (0x0300, 0x0301)
    modern = load_profile("mozilla-modern")
    assert modern.server.versions == (0x0304,) and modern.client.derived
    assert load_profile("mozilla-old").server.server_preference is True


# -- IBM MQ: the alias outcome matrix -------------------------------------------------------------

ROWS = {
    "specific-1.2": "ECDHE_RSA_AES_128_GCM_SHA256",
    "specific-1.3": "TLS_AES_256_GCM_SHA384",
    "ANY": "ANY",
    "ANY_TLS12": "ANY_TLS12",
    "ANY_TLS13": "ANY_TLS13",
}
COLUMNS = ["specific-1.2", "specific-1.3", "ANY", "ANY_TLS12", "ANY_TLS13", "ANY_TLS12_OR_HIGHER",
           "ANY_TLS13_OR_HIGHER"]  # fmt: skip
# vendor-codes.md §1a, client = row, server = column; C connects, F fails, L likely to fail.
MATRIX = {
    "specific-1.2": "C F C C F C F",
    "specific-1.3": "F C C F C C C",
    "ANY": "F L C F C C C",
    "ANY_TLS12": "L F C C F C F",
    "ANY_TLS13": "F L C F C C C",
}
SSLCIPH = {**ROWS, "ANY_TLS12_OR_HIGHER": "ANY_TLS12_OR_HIGHER",
           "ANY_TLS13_OR_HIGHER": "ANY_TLS13_OR_HIGHER"}  # fmt: skip
SHIPPED = {
    "specific-1.2": "profile:mq-ecdhe-rsa-aes-128-gcm-sha256",
    "specific-1.3": "profile:mq-tls-aes-256-gcm-sha384",
    "ANY": "profile:mq-any",
    "ANY_TLS12": "profile:mq-any-tls12",
    "ANY_TLS13": "profile:mq-any-tls13",
    "ANY_TLS12_OR_HIGHER": "profile:mq-any-tls12-or-higher",
    "ANY_TLS13_OR_HIGHER": "profile:mq-any-tls13-or-higher",
}
VERDICT = {"C": "connects", "F": "fails", "L": "likely_fails"}
CELLS = [(r, c, MATRIX[r].split()[i]) for r in ROWS for i, c in enumerate(COLUMNS)]


@pytest.mark.parametrize(("row", "column", "cell"), CELLS, ids=[f"{r}->{c}" for r, c, _ in CELLS])
async def test_mq_alias_matrix(row: str, column: str, cell: str) -> None:
    for a, b in ((SHIPPED[row], SHIPPED[column]), (f"mq:{SSLCIPH[row]}", f"mq:{SSLCIPH[column]}")):
        result = await run_overlap(a, b)
        doc = check(result)
        assert result.mode == "profile_profile"
        assert result.verdict == VERDICT[cell], (a, b, result.reason, result.steps)
        msg_codes = {c for m in result.messages for c in m.codes}
        if cell == "C":
            assert result.messages == () and result.predicted is not None
        else:
            assert {"AMQ9631", "AMQ9641"} <= msg_codes, result.messages
            assert {"CSQX631E", "CSQX641E"} <= msg_codes
            assert {m.product for m in result.messages} == {"IBM MQ"}
        assert doc["a"]["sslciph"] == SSLCIPH[row] and doc["b"]["sslciph"] == SSLCIPH[column]


async def test_mq_prediction_follows_the_queue_manager_order() -> None:
    # Both ends on ANY: TLS 1.3, and the responder's order puts CHACHA20 first.
    r = await run_overlap("mq:ANY", "mq:ANY_TLS12_OR_HIGHER")
    assert r.predicted is not None and r.predicted.version == "TLSv1.3"
    assert r.predicted.cipher.code == "0x1303"
    assert [m.name for m in r.predicted.cipher.mq] == ["TLS_CHACHA20_POLY1305_SHA256"]
    # A TLS 1.2 alias against ANY: TLS 1.2 and the first TLS 1.2 suite of the MQ order.
    r = await run_overlap("mq:ANY_TLS12", "mq:ANY")
    assert r.predicted is not None and r.predicted.version == "TLSv1.2"
    assert r.predicted.cipher.code == "0x009D"
    # The likely-fails cell still names the suite this model expects the handshake to pick.
    r = await run_overlap("mq:ANY_TLS12", "mq:ECDHE_RSA_AES_128_GCM_SHA256")
    assert r.verdict == "likely_fails" and r.predicted is not None
    assert "0xC02F" in codes(r.both) and len(r.both) == 12 and r.only_a == ()


# -- profile vs profile: versions, suites, certificates, vendor messages ---------------------------


async def test_version_gap_names_the_vendor_messages_of_both_partners() -> None:
    r = await run_overlap("profile:cft-3.1", "profile:mozilla-intermediate")
    assert r.verdict == "fails" and r.common_versions == () and r.predicted is None
    assert r.causes == ("partner_version_too_new",)
    assert {m.product for m in r.messages} == {"Transfer CFT"}
    r = await run_overlap("profile:mozilla-intermediate", "profile:zos-attls-tls11")
    assert r.causes == ("partner_version_too_old",)
    assert "RC 412" in {c for m in r.messages for c in m.codes}


async def test_no_common_suite_is_cipher_mismatch_with_cr_40_and_rc_402() -> None:
    r = await run_overlap("profile:cft-3.1", "profile:ibmi-v5r4")  # both TLS 1.0
    assert r.verdict == "connects"  # 47 is common
    r = await run_overlap("profile:mozilla-old", "profile:cft-3.1")
    assert r.verdict == "connects" and r.predicted is not None
    assert r.predicted.cipher.code == "0x002F"  # CFT as server picks its own first
    r = await run_overlap("mq:ANY_TLS12", "profile:zos-attls-tls11")
    assert r.verdict == "fails" and r.causes == ("partner_version_too_old",)


async def test_required_client_certificate(tmp_path: Path) -> None:
    strict = tmp_path / "strict-partner.toml"
    strict.write_text(
        'description = "a partner that requires client certificates"\n'
        'source = "test"\nproduct = "z/OS System SSL"\n'
        '[server]\nversions = ["TLSv1.2"]\nsuites = ["gsk:C02F", "gsk:9C"]\n'
        'client_certificate = "required"\nserver_preference = true\n'
    )
    r = await run_overlap("profile:java8", str(strict))
    assert r.verdict == "fails" and r.causes == ("client_cert_missing",)
    assert {c for m in r.messages for c in m.codes} >= {"RC 403", "RC 5001"}
    r = await run_overlap("mq:ANY_TLS12", str(strict))  # an MQ channel has a certificate
    assert r.verdict == "connects" and r.predicted is not None
    assert r.predicted.cipher.code == "0xC02F"
    assert check(r)["b"]["name"].endswith("strict-partner.toml")


async def test_server_certificate_type_limits_the_suites() -> None:
    # mozilla-old lists ECDHE-ECDSA suites but serves an RSA certificate: with server order,
    # its first listed suite Java offers (0xC02B) cannot be picked, its first RSA one is.
    r = await run_overlap("profile:java8", "profile:mozilla-old")
    assert "0xC02B" in codes(r.both) and r.both[0].code == "0xC02B"  # the lists do meet
    assert r.predicted is not None and r.predicted.cipher.code == "0xC02F"


def test_profile_files_are_validated_strictly(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('description = "x"\nsource = "y"\n[client]\nversions = ["TLSv1.2"]\n'
                   'suites = ["AES128-SHA"]\ncipher_order = "client"\n')  # fmt: skip
    proc = tlsprobe("overlap", str(bad), "profile:mozilla-old")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert f"{bad}: client.cipher_order: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad.write_text('description = "x"\nsource = "y"\n[client]\nversions = ["TLSv1.2"]\n'
                   'suites = ["gsk:ZZ"]\n')  # fmt: skip
    with pytest.raises(InputError, match=r"bad\.toml: client\.suites\[0\]: .*gsk:ZZ"):
        load_profile(str(bad))
    bad.write_text('description = "x"\nsource = "y"\n[mq]\nsslciph = "ANY_TLS14"\n')
    with pytest.raises(InputError, match=r"mq\.sslciph: .*did you mean"):
        load_profile(str(bad))


@pytest.mark.parametrize(
    ("a", "b", "words"),
    [
        ("somehost", "profile:java8", ["HOST:PORT"]),
        ("profile:no-such", "profile:java8", ["no such partner profile"]),
        ("mq:ANY_TLS14", "profile:java8", ["did you mean mq:ANY_TLS1"]),
    ],
)
def test_overlap_bad_input_is_exit_2(a: str, b: str, words: list[str]) -> None:
    proc = tlsprobe("overlap", a, b)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_overlap_cli_human_and_json_views() -> None:
    proc = tlsprobe("overlap", "mq:ANY", "profile:mq-tls-aes-256-gcm-sha384")
    assert proc.returncode == 1, proc.stderr
    assert "LIKELY FAILS" in proc.stdout and "AMQ9631" in proc.stdout
    assert re.search(r"x x  0x1302 +TLS_AES_256_GCM_SHA384", proc.stdout), proc.stdout
    proc = tlsprobe("overlap", "profile:java8", "profile:mozilla-intermediate", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, overlap_schema())
    assert doc["verdict"] == "connects" and doc["schema_version"] == 1
    assert doc["predicted"]["version"] == "TLSv1.2"


# -- endpoint vs endpoint: two openssl s_server -------------------------------------------------

A_TLS12 = "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:AES256-SHA:ECDHE-RSA-AES256-GCM-SHA384"
A_TLS13 = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
B_TLS12 = "AES256-SHA:ECDHE-RSA-AES256-GCM-SHA384:CAMELLIA128-SHA:ECDHE-RSA-CHACHA20-POLY1305"
B_TLS13 = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
NO_OLD = ("-no_ssl3", "-no_tls1", "-no_tls1_1")


async def scanned(peer: Peer) -> dict[str, set[str]]:
    res = await scan(ScanOptions(target=Target(host=peer.host, port=peer.port), timeout=5.0))
    assert res.outcome == "scanned", res.error
    return {p.version: {c.code for c in p.ciphers} for p in res.protocols if p.supported}


async def test_two_openssl_servers_overlap_is_the_intersection(pki: TestPKI) -> None:
    args_a = openssl_args(pki, "good", *NO_OLD, "-cipher", A_TLS12, "-ciphersuites", A_TLS13)
    args_b = openssl_args(pki, "good", *NO_OLD, "-cipher", B_TLS12, "-ciphersuites", B_TLS13)
    with openssl_server(args_a) as a, openssl_server(args_b) as b:
        # Ground truth: each server accepts exactly what it was configured with.
        truth_a, truth_b = await scanned(a), await scanned(b)
        assert truth_a == {"TLSv1.2": hexes(A_TLS12), "TLSv1.3": hexes(A_TLS13)}
        assert truth_b == {"TLSv1.2": hexes(B_TLS12), "TLSv1.3": hexes(B_TLS13)}
        r = await run_overlap(a.hostport, b.hostport)
    doc = check(r)
    all_a = hexes(A_TLS12) | hexes(A_TLS13)
    all_b = hexes(B_TLS12) | hexes(B_TLS13)
    assert r.mode == "endpoint_endpoint"
    assert codes(r.both) == all_a & all_b
    assert codes(r.only_a) == all_a - all_b
    assert codes(r.only_b) == all_b - all_a
    assert r.common_versions == ("TLSv1.2", "TLSv1.3")
    assert r.verdict == "connects"
    assert r.predicted is not None and r.predicted.version == "TLSv1.3"
    assert r.predicted.cipher.code == "0x1302"  # the only TLS 1.3 suite both accept
    both = {e["code"]: e for e in doc["both"]}
    assert both["0xC030"]["versions"] == ["TLSv1.2"]
    assert both["0xC030"]["mq"][0]["name"] == "ECDHE_RSA_AES_256_GCM_SHA384"
    assert both["0x0035"]["gskit"] == {"value": "35", "confidence": "C"}


# -- endpoint vs profile: gnutls-serv as a legacy partner -----------------------------------------

# Like the seeds' z/OS partner: TLS 1.0/1.1, 3DES and AES-CBC with RSA key exchange, and the
# server's own preference (3DES first), so the pick differs from most clients' first choice.
LEGACY = ("NONE:+VERS-TLS1.1:+VERS-TLS1.0:+3DES-CBC:+AES-128-CBC:+AES-256-CBC:+RSA:+SHA1"
          ":+COMP-NULL:+SIGN-ALL:%SERVER_PRECEDENCE")  # fmt: skip
# gnutls-cli offering what each profile offers that gnutls implements (DES and NULL it lacks).
GNUTLS_CLIENT = {
    "cft-3.1": "NONE:+VERS-TLS1.0:+AES-128-CBC:+3DES-CBC:+RSA:+SHA1:+COMP-NULL:+SIGN-ALL",
    "java8": "NONE:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0:+AES-256-CBC:+AES-128-CBC:+AES-256-GCM"
    ":+AES-128-GCM:+3DES-CBC:+ECDHE-RSA:+ECDHE-ECDSA:+RSA:+DHE-RSA:+DHE-DSS:+SHA384:+SHA256"
    ":+SHA1:+AEAD:+COMP-NULL:+SIGN-ALL:+CURVE-ALL",
}
CIPHER_NAMES = {"3DES-CBC": "0x000A", "AES-128-CBC": "0x002F", "AES-256-CBC": "0x0035"}


def gnutls_cli_pick(port: int, priority: str) -> tuple[str, str]:
    exe = shutil.which("gnutls-cli")
    if exe is None:
        pytest.fail("gnutls-cli is not installed; the tests need it (see scripts/test)", False)
    proc = subprocess.run(
        [exe, "--priority", priority, "--insecure", "--port", str(port), "127.0.0.1"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    m = re.search(r"Description: \((TLS1\.\d)[^)]*\)-\(RSA\)-\(([A-Z0-9-]+)\)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    return "TLSv" + m.group(1)[3:], CIPHER_NAMES[m.group(2)]


@pytest.fixture
def legacy_gnutls(pki: TestPKI) -> Any:
    args = ["--x509certfile", pki.good.chain, "--x509keyfile", pki.good.key,
            "--disable-client-cert", "--priority", LEGACY]  # fmt: skip
    with gnutls_server(args) as peer:
        yield peer


@pytest.mark.parametrize(
    ("profile", "version", "code"),
    [("cft-3.1", "TLSv1.0", "0x000A"), ("java8", "TLSv1.1", "0x000A")],
)
async def test_profile_against_legacy_gnutls_gets_gnutls_pick(
    legacy_gnutls: Peer, profile: str, version: str, code: str
) -> None:
    r = await run_overlap(f"profile:{profile}", legacy_gnutls.hostport)
    doc = check(r)
    assert r.mode == "endpoint_profile" and r.verdict == "connects"
    assert r.observed is not None and r.observed.answer == "server_hello"
    assert (r.observed.version, r.observed.cipher.code if r.observed.cipher else None) == (
        version, code,
    )  # fmt: skip
    assert r.predicted is not None and r.predicted.basis == "observed"
    # The same suites offered by gnutls's own client get the same answer.
    assert gnutls_cli_pick(legacy_gnutls.port, GNUTLS_CLIENT[profile]) == (version, code)
    # The per-suite overlap comes from a scan of the endpoint.
    accepted = {"0x000A", "0x002F", "0x0035"}
    assert codes(r.both) | codes(r.only_b) == accepted
    assert doc["a"]["kind"] == "profile" and doc["b"]["kind"] == "endpoint"
    assert doc["b"]["versions"] == ["TLSv1.0", "TLSv1.1"]


async def test_legacy_gnutls_with_endpoint_first_keeps_the_argument_order(
    legacy_gnutls: Peer,
) -> None:
    r = await run_overlap(legacy_gnutls.hostport, "profile:zos-attls-tls11")
    check(r)
    assert r.a.kind == "endpoint" and r.a.role == "server" and r.b.role == "client"
    assert r.observed is not None and r.observed.version == "TLSv1.1"
    assert r.observed.cipher is not None and r.observed.cipher.code == "0x000A"
    assert codes(r.both) == {"0x000A", "0x002F", "0x0035"}  # the z/OS list is gnutls's list


def test_modern_profile_against_legacy_gnutls_fails_with_vendor_messages(
    legacy_gnutls: Peer,
) -> None:
    proc = tlsprobe("overlap", "profile:mozilla-modern", legacy_gnutls.hostport, "--json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, overlap_schema())
    assert doc["verdict"] == "fails" and doc["predicted"] is None
    assert doc["observed"]["answer"] == "alert"  # gnutls answers alert 40 here, not 70
    assert doc["causes"][0] == "partner_version_too_old"
    assert "no_shared_cipher" in doc["causes"]
    all_codes = {c for m in doc["messages"] for c in m["codes"]}
    assert {"RC 402", "CR=40", "AMQ9631"} <= all_codes
    assert doc["common_versions"] == [] and doc["both"] == []
