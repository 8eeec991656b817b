"""`tlsprobe scan` compared with ground truth found without it (issue 4).

Theory of operation
-------------------
For each server below, the accepted suites per version are found twice: by `scan` (raw hellos
built by our codec, a few dozen connections) and independently, by clients we did not write,
one full handshake per suite and version. The sets must be equal, and where the server enforces
an order (``-serverpref``, ``%SERVER_PRECEDENCE``) the order must be too.

* ``openssl s_server``: ``openssl s_client`` with ``-tls1`` / ``-tls1_1`` / ``-tls1_2`` and
  ``-cipher NAME:@SECLEVEL=0`` for every suite of ``openssl ciphers -V
  'ALL:COMPLEMENTOFALL:@SECLEVEL=0'``, and ``-tls1_3 -ciphersuites NAME`` for the five TLS 1.3
  suites OpenSSL implements. Accepted = the handshake completes with that suite at that version.
  Suites s_client cannot offer at a version (``openssl ciphers -s``: TLS 1.2-only suites at
  1.0, PSK and SRP without a callback) would fail before a byte is sent, so they are not run.
  A version the library cannot speak at all (SSLv3 and SSLv2: `s_client` has no ``-ssl3``) is
  empty.
* ``gnutls-serv``: ``gnutls-cli --priority P --list`` prints the suites P enables, with their
  IANA code and minimum version, whatever the server's certificate: for an RSA server it lists
  ECDHE_ECDSA suites too, which it can never negotiate. That list is therefore ambiguous, so
  the truth is a gnutls-cli handshake per listed suite and version with a priority that allows
  exactly that suite (``NONE:+VERS-x:+KX:+CIPHER:+MAC:...``). The test also holds the list,
  cut by key exchange and minimum version, to that handshake truth: they must agree. This is
  where suites our OpenSSL cannot negotiate (3DES, RC4, CAMELLIA-GCM, CCM-8, anonymous) are
  checked.
* The lab's scripted legacy partners: the suites they are written to accept (SSL 3.0 with
  RC4-MD5, RC4-SHA, 3DES, AES128-SHA in that order; TLS 1.1 with 3DES only).

Every client runs as a subprocess, several at once (`CLIENTS`); the servers handle them one by
one (s_server) or interleaved (gnutls-serv), which is fine for a handshake each.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import trio
from labproc import running_lab
from peers import HOST, Peer, _require, free_port, gnutls_server, openssl_server
from probing import schema

from probe.pki import IdentityFiles, TestPKI
from probe.result import to_jsonable
from probe.scan import ScanOptions, ScanResult, scan
from probe.target import Target
from probe.wire import registry

VERSION_NAMES = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
CLIENTS = 8  # client processes at once
CLIENT_DEADLINE = 20.0  # seconds for one ground-truth handshake (loaded CI hosts)

# --------------------------------------------------------------------------- helpers


def scan_schema() -> dict[str, Any]:
    return schema("scan")


async def scan_port(port: int) -> ScanResult:
    result = await scan(ScanOptions(target=Target(host=HOST, port=port), timeout=5.0))
    jsonschema.validate(json.loads(json.dumps(to_jsonable(result))), scan_schema())
    assert result.outcome == "scanned", result.error
    return result


def found(result: ScanResult) -> dict[str, list[int]]:
    """Version name -> accepted suite codes, in the order scan reports them."""
    assert [p.version for p in result.protocols] == list(VERSION_NAMES)
    return {p.version: [int(c.code, 16) for c in p.ciphers] for p in result.protocols}


def names(codes: Sequence[int] | set[int]) -> list[str]:
    out = []
    for code in sorted(codes) if isinstance(codes, set) else codes:
        s = registry.suite(code)
        out.append(s.openssl or s.iana if s else f"0x{code:04X}")
    return out


def assert_same_sets(result: ScanResult, truth: dict[str, set[int]]) -> None:
    got = found(result)
    for p in result.protocols:
        want = truth.get(p.version, set())
        have = set(got[p.version])
        assert have == want, (
            f"{p.version}: scan only {names(have - want)}; ground truth only {names(want - have)}"
        )
        assert len(got[p.version]) == len(have), f"{p.version}: a suite reported twice"
        assert p.supported == bool(want), p.version


async def run_clients(argvs: Sequence[Sequence[str]]) -> list[str]:
    """Run every command (stdin empty), ``CLIENTS`` at once; their stdout+stderr, in order."""
    limiter = trio.CapacityLimiter(CLIENTS)
    out = [""] * len(argvs)

    async def one(i: int, argv: Sequence[str]) -> None:
        async with limiter:
            with trio.fail_after(CLIENT_DEADLINE):
                proc = await trio.run_process(
                    list(argv), stdin=b"", capture_stdout=True, capture_stderr=True, check=False
                )
        out[i] = (proc.stdout + proc.stderr).decode("utf-8", "replace")

    async with trio.open_nursery() as nursery:
        for i, argv in enumerate(argvs):
            nursery.start_soon(one, i, argv)
    return out


# --------------------------------------------------------------------------- OpenSSL truth

TLS13_ALL = ("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
             "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256")  # fmt: skip
EVERYTHING = "ALL:COMPLEMENTOFALL:@SECLEVEL=0"
_CIPHERS_V = re.compile(r"0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+(\S+)\s+Kx=\S+\s+Au=(\S+)")


@cache
def s_client_versions() -> dict[str, str]:
    """Version name -> s_client flag, for the versions this OpenSSL build can speak at all."""
    usage = subprocess.run(
        [_require("openssl"), "s_client", "-help"], capture_output=True, text=True
    ).stderr
    flags = {"SSLv2": "-ssl2", "SSLv3": "-ssl3", "TLSv1.0": "-tls1", "TLSv1.1": "-tls1_1",
             "TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}  # fmt: skip
    speaks = {v: f for v, f in flags.items() if re.search(rf"^ {re.escape(f)}\s", usage, re.M)}
    assert {"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"} <= set(speaks), usage
    return speaks


@cache
def s_client_suites(flag: str = "") -> dict[str, tuple[int, bool, str]]:
    """The suites s_client can offer with ``flag``: name -> (IANA code, is TLS 1.3, Au=).
    Without ``flag``, every suite of the list, in the list's order.

    ``openssl ciphers -s`` keeps the suites of the list that a client at that version puts in
    its hello (version range, security level, no PSK/SRP without a callback). Any other suite
    of the list fails in s_client before a byte is sent, so leaving it out changes no answer
    and saves two thirds of the processes."""
    out = subprocess.run(
        [_require("openssl"), "ciphers", *(["-s", flag] if flag else []), "-V",
         "-ciphersuites", TLS13_ALL, EVERYTHING],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {m[3]: (int(m[1] + m[2], 16), m[4] == "TLSv1.3", m[5]) for m in _CIPHERS_V.finditer(out)}


_BRIEF = re.compile(r"^Protocol version: (\S+)\r?\nCiphersuite: (\S+)", re.M)
_S_CLIENT_VERSION = {"SSLv3": "SSLv3", "TLSv1": "TLSv1.0", "TLSv1.1": "TLSv1.1",
                     "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}  # fmt: skip


async def openssl_truth(port: int) -> dict[str, set[int]]:
    """One `openssl s_client` handshake per suite and version (see the module docstring)."""
    openssl = _require("openssl")
    jobs: list[tuple[str, str, int]] = []
    argvs: list[list[str]] = []
    for version, flag in s_client_versions().items():
        for name, (code, tls13, _) in s_client_suites(flag).items():
            pick = ["-ciphersuites", name] if tls13 else ["-cipher", f"{name}:@SECLEVEL=0"]
            jobs.append((version, name, code))
            argvs.append([openssl, "s_client", "-connect", f"{HOST}:{port}", flag, *pick,
                          "-brief"])  # fmt: skip
    # The list is what we think it is: legacy versions, NULL, anonymous, CCM-8, TLS 1.3 CCM.
    offered = {v: {code for v2, _, code in jobs if v2 == v} for v in VERSION_NAMES}
    assert {0x0001, 0x0034, 0xC0A0, 0xCCAA} <= offered["TLSv1.2"], offered
    assert {0x0002, 0xC014} <= offered["TLSv1.0"] and len(offered["TLSv1.3"]) == 5, offered
    truth: dict[str, set[int]] = {v: set() for v in VERSION_NAMES}
    for (version, name, code), out in zip(jobs, await run_clients(argvs), strict=True):
        m = _BRIEF.search(out)
        if m is None:
            continue
        assert _S_CLIENT_VERSION.get(m[1]) == version and m[2] == name, (version, name, out)
        truth[version].add(code)
    return truth


def _identity(identity: IdentityFiles, pki: TestPKI) -> list[str | Path]:
    return ["-cert", identity.cert, "-key", identity.key, "-cert_chain", pki.intermediate]


ALL_VERSIONS = ["-min_protocol", "TLSv1", "-max_protocol", "TLSv1.3"]


def s_server_everything(identity: IdentityFiles, pki: TestPKI) -> list[str | Path]:
    """Every suite and version OpenSSL has, at SECLEVEL 0 (DHE: OpenSSL 3's automatic DH)."""
    return [*_identity(identity, pki), *ALL_VERSIONS, "-cipher", EVERYTHING,
            "-ciphersuites", TLS13_ALL]  # fmt: skip


# --------------------------------------------------------------------------- OpenSSL servers


async def test_openssl_everything_rsa(pki: TestPKI) -> None:
    with openssl_server(s_server_everything(pki.good, pki)) as peer:
        result = await scan_port(peer.port)
        truth = await openssl_truth(peer.port)
    assert_same_sets(result, truth)
    # Sanity of the truth itself: the legacy versions, NULL, anonymous, CCM-8 and the TLS 1.3
    # CCM suites are all there, so the comparison covers them.
    assert len(truth["TLSv1.0"]) >= 15 and len(truth["TLSv1.2"]) >= 50
    assert {0x0001, 0x0034, 0xC0A0, 0xCCAA} <= truth["TLSv1.2"]
    assert truth["TLSv1.3"] == {0x1301, 0x1302, 0x1303, 0x1304, 0x1305}
    # OpenSSL follows the client's order unless told otherwise.
    for p in result.protocols:
        assert p.server_order is (False if len(p.ciphers) > 1 else None), p.version
    assert set(result.certificates) == {"RSA"}
    assert result.certificates["RSA"][0].key == "RSA 2048"
    assert len(result.certificates["RSA"]) == 2  # leaf + intermediate
    assert result.secure_renegotiation is True and result.extended_master_secret is True


async def test_openssl_everything_ecdsa(pki: TestPKI) -> None:
    with openssl_server(s_server_everything(pki.good_ec, pki)) as peer:
        result = await scan_port(peer.port)
        truth = await openssl_truth(peer.port)
    assert_same_sets(result, truth)
    # Authentication as OpenSSL itself labels the suites: ECDSA and anonymous, no RSA.
    au = {code: a for code, _, a in s_client_suites().values()}
    assert {au[c] for cs in truth.values() for c in cs} == {"ECDSA", "None", "any"}
    assert set(result.certificates) == {"ECDSA"}
    assert result.certificates["ECDSA"][0].key.startswith("EC")


async def test_openssl_everything_dual_certificate_server_order(pki: TestPKI) -> None:
    """RSA and ECDSA certificates, every suite, -serverpref: the order of the whole list."""
    ec = pki.good_ec
    args = [*s_server_everything(pki.good, pki), "-dcert", ec.cert, "-dkey", ec.key,
            "-dcert_chain", pki.intermediate, "-serverpref"]  # fmt: skip
    with openssl_server(args) as peer:
        result = await scan_port(peer.port)
        truth = await openssl_truth(peer.port)
    assert_same_sets(result, truth)
    au = {a for code, _, a in s_client_suites().values() if code in truth["TLSv1.2"]}
    assert au == {"RSA", "ECDSA", "None"}, au
    # The server's order is its configured list (`openssl ciphers` prints it in that order),
    # cut to what it accepts at each version.
    configured = [code for code, _, _ in s_client_suites().values()]
    got = found(result)
    for p in result.protocols:
        if p.supported:
            assert p.server_order is True, p.version
            assert got[p.version] == [c for c in configured if c in truth[p.version]], p.version
    assert set(result.certificates) == {"RSA", "ECDSA"}


# ECDHE-RSA-AES256-GCM-SHA384, AES128-SHA, ECDHE-RSA-AES128-GCM-SHA256: the first and last are
# TLS 1.2 only, so TLS 1.0 and 1.1 have one suite (no order to find) and TLS 1.2 three.
SHORT_TLS12 = (0xC030, 0x002F, 0xC02F)
SHORT_TLS13 = (0x1303, 0x1301)  # CHACHA20 before AES-128-GCM: not OpenSSL's default order


def s_server_short(pki: TestPKI, serverpref: bool) -> list[str | Path]:
    return [*_identity(pki.good, pki), *ALL_VERSIONS,
            "-cipher", ":".join(names(SHORT_TLS12)) + ":@SECLEVEL=0",
            "-ciphersuites", ":".join(names(SHORT_TLS13)),
            *(["-serverpref"] if serverpref else [])]  # fmt: skip


@pytest.mark.parametrize("serverpref", [True, False], ids=["serverpref", "client-order"])
async def test_openssl_order(pki: TestPKI, serverpref: bool) -> None:
    with openssl_server(s_server_short(pki, serverpref)) as peer:
        result = await scan_port(peer.port)
        truth = await openssl_truth(peer.port)
    assert_same_sets(result, truth)
    assert truth["TLSv1.2"] == set(SHORT_TLS12) and truth["TLSv1.3"] == set(SHORT_TLS13)
    got = found(result)
    by_version = {p.version: p for p in result.protocols}
    for version, configured in (("TLSv1.2", SHORT_TLS12), ("TLSv1.3", SHORT_TLS13)):
        assert by_version[version].server_order is serverpref, version
        if serverpref:
            assert got[version] == list(configured), names(got[version])
    for version in ("TLSv1.0", "TLSv1.1"):
        assert got[version] == [0x002F] and by_version[version].server_order is None


# --------------------------------------------------------------------------- GnuTLS

# Legacy suites GnuTLS 3.7 still has and Debian's OpenSSL 3 does not: 3DES, RC4 (also with MD5),
# CAMELLIA (CBC and GCM), AES-CCM-8, anonymous DH and ECDH; plus CBC with SHA-256/384 MACs,
# which NORMAL leaves out.
GNUTLS_LEGACY = (
    "NORMAL:+VERS-TLS1.0:+VERS-TLS1.1:+3DES-CBC:+ARCFOUR-128:+CAMELLIA-128-CBC:"
    "+CAMELLIA-256-CBC:+CAMELLIA-128-GCM:+CAMELLIA-256-GCM:+AES-128-CCM-8:+AES-256-CCM-8:"
    "+RSA:+DHE-RSA:+ANON-DH:+ANON-ECDH:+SHA1:+MD5:+SHA256:+SHA384"
)
_GNUTLS_VERSION = {"TLSv1.0": "TLS1.0", "TLSv1.1": "TLS1.1", "TLSv1.2": "TLS1.2",
                   "TLSv1.3": "TLS1.3"}  # fmt: skip
# GnuTLS suite-name key exchange -> priority keyword, longest first.
_GNUTLS_KX = (("ECDHE_ECDSA", "ECDHE-ECDSA"), ("ECDHE_RSA", "ECDHE-RSA"), ("DHE_RSA", "DHE-RSA"),
              ("DHE_DSS", "DHE-DSS"), ("ECDH_ANON", "ANON-ECDH"), ("DH_ANON", "ANON-DH"),
              ("RSA", "RSA"))  # fmt: skip
_AEAD = ("GCM", "CCM", "CCM-8", "POLY1305")
# Which key exchanges a server certificate can serve (anonymous ones need none).
KX_FOR_KEY = {"RSA": {"RSA", "DHE-RSA", "ECDHE-RSA", "ANON-DH", "ANON-ECDH"},
              "ECDSA": {"ECDHE-ECDSA", "ANON-DH", "ANON-ECDH"}}  # fmt: skip


@dataclass(frozen=True, slots=True)
class GnuSuite:
    name: str
    code: int
    min_version: str  # "TLS1.0", ... as --list prints it
    kx: str | None  # priority keyword; None for TLS 1.3 suites
    cipher: str
    mac: str

    def priority(self, version: str) -> str:
        """A priority string that allows this suite only, at ``version``."""
        kx = f":+{self.kx}" if self.kx else ""
        return (f"NONE:+VERS-{version}{kx}:+{self.cipher}:+{self.mac}:+SIGN-ALL:+GROUP-ALL"
                ":+CTYPE-X509:+COMP-NULL")  # fmt: skip


_LIST_ROW = re.compile(r"^(TLS_\S+)\s+0x([0-9a-f]{2}), 0x([0-9a-f]{2})\s+(\S+)$", re.M)


@cache
def gnutls_list(priority: str) -> tuple[tuple[GnuSuite, ...], frozenset[str]]:
    """``gnutls-cli --list``: the suites ``priority`` enables, in its order, and its versions."""
    out = subprocess.run(
        [_require("gnutls-cli"), "--priority", priority, "--list"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = {k: v for k, _, v in (ln.partition(": ") for ln in out.splitlines()) if v}
    ciphers = sorted(line["Ciphers"].split(", "), key=len, reverse=True)
    versions = frozenset(v.removeprefix("VERS-") for v in line["Protocols"].split(", "))
    suites = []
    for m in _LIST_ROW.finditer(out):
        name, code, min_version = m[1], int(m[2] + m[3], 16), m[4]
        rest = name.removeprefix("TLS_")
        kx = None
        if min_version != "TLS1.3":
            key, kx = next((k, p) for k, p in _GNUTLS_KX if rest.startswith(k + "_"))
            rest = rest.removeprefix(key + "_")
        rest = rest.replace("_", "-").replace("3DES-EDE-CBC", "3DES-CBC")
        cipher = next(c for c in ciphers if rest == c or rest.startswith(c + "-"))
        mac = "AEAD" if cipher.endswith(_AEAD) else rest.removeprefix(cipher + "-")
        assert mac in line["MACs"].split(", "), (name, mac)
        suites.append(GnuSuite(name=name, code=code, min_version=min_version, kx=kx,
                               cipher=cipher, mac=mac))  # fmt: skip
    assert suites, out
    return tuple(suites), versions


def gnutls_list_truth(priority: str, key: str) -> dict[str, list[int]]:
    """What --list implies for a server with a ``key`` certificate, in priority order."""
    suites, versions = gnutls_list(priority)
    out: dict[str, list[int]] = {v: [] for v in VERSION_NAMES}
    for version, gv in _GNUTLS_VERSION.items():
        if gv not in versions:
            continue
        for s in suites:
            if gv == "TLS1.3":
                ok = s.min_version == "TLS1.3"
            else:
                ok = s.min_version != "TLS1.3" and s.min_version <= gv and s.kx in KX_FOR_KEY[key]
            if ok:
                out[version].append(s.code)
    return out


async def gnutls_handshake_truth(port: int, priority: str) -> dict[str, set[int]]:
    """One gnutls-cli handshake per listed suite and version, that suite alone allowed."""
    exe = _require("gnutls-cli")
    suites, _ = gnutls_list(priority)
    jobs: list[tuple[str, GnuSuite]] = []
    for version, gv in _GNUTLS_VERSION.items():
        for s in suites:
            if (s.min_version == "TLS1.3") == (gv == "TLS1.3"):
                jobs.append((version, s))
    argvs = [[exe, "--insecure", "--port", str(port), "--priority",
              s.priority(_GNUTLS_VERSION[v]), HOST] for v, s in jobs]  # fmt: skip
    truth: dict[str, set[int]] = {v: set() for v in VERSION_NAMES}
    for (version, s), out in zip(jobs, await run_clients(argvs), strict=True):
        if "- Handshake was completed" not in out:
            continue
        desc = re.search(r"^- Description: \((TLS1\.\d)-X\.509\)-.*\(([^()]+)\)-\(([^()]+)\)$",
                         out, re.M)  # fmt: skip
        assert desc, out
        assert desc[1] == _GNUTLS_VERSION[version] and s.cipher in (desc[2], desc[3]), out
        truth[version].add(s.code)
    return truth


def gnutls_identity(identity: IdentityFiles, priority: str) -> list[str | Path]:
    return ["--x509certfile", identity.chain, "--x509keyfile", identity.key,
            "--disable-client-cert", "--priority", priority]  # fmt: skip


@pytest.mark.parametrize(
    ("key", "precedence"),
    [("RSA", False), ("RSA", True), ("ECDSA", False)],
    ids=["rsa", "rsa-server-precedence", "ecdsa"],
)
async def test_gnutls_legacy_suites(pki: TestPKI, key: str, precedence: bool) -> None:
    priority = GNUTLS_LEGACY + (":%SERVER_PRECEDENCE" if precedence else "")
    identity = pki.good if key == "RSA" else pki.good_ec
    with gnutls_server(gnutls_identity(identity, priority)) as peer:
        result = await scan_port(peer.port)
        truth = await gnutls_handshake_truth(peer.port, priority)
    listed = gnutls_list_truth(priority, key)
    # The list cut by certificate and version says what the handshakes found: neither source
    # of truth is off.
    assert {v: set(codes) for v, codes in listed.items()} == truth
    assert_same_sets(result, truth)
    # Suites our OpenSSL cannot negotiate are part of the comparison.
    legacy = {"RSA": {0x000A, 0x0004, 0x0005, 0xC012, 0xC011, 0x0016, 0x0018, 0xC017},
              "ECDSA": {0xC008, 0xC007, 0x0018, 0xC017}}[key]  # fmt: skip
    assert legacy <= truth["TLSv1.0"], names(legacy - truth["TLSv1.0"])
    # CAMELLIA-GCM and AES-CCM-8 (TLS 1.2 only)
    tls12 = {"RSA": {0xC07A, 0xC0A0}, "ECDSA": {0xC086, 0xC0AE}}[key]
    assert tls12 <= truth["TLSv1.2"], names(tls12 - truth["TLSv1.2"])
    got = found(result)
    for p in result.protocols:
        if len(p.ciphers) > 1:
            assert p.server_order is precedence, p.version
        if precedence:
            # %SERVER_PRECEDENCE: GnuTLS picks in its priority order, which --list prints.
            assert got[p.version] == listed[p.version], p.version
    assert set(result.certificates) == {key}


# --------------------------------------------------------------------------- the lab


@pytest.fixture(scope="module")
def legacy_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """The lab's two legacy partners, started as a user starts them (tests/labproc.py)."""
    with running_lab(tmp_path_factory.mktemp("lab-pki"), "sslv3-only", "legacy-3des") as lab:
        yield lab.ports


@pytest.mark.parametrize(
    ("scenario", "version", "suites", "server_order"),
    [
        # IBM i era: RC4-MD5, RC4-SHA, DES-CBC3-SHA, AES128-SHA, in the partner's order.
        ("sslv3-only", "SSLv3", [0x0004, 0x0005, 0x000A, 0x002F], True),
        # The z/OS trace: TLS 1.1, "cipher specification 0A" and nothing else.
        ("legacy-3des", "TLSv1.1", [0x000A], None),
    ],
)
async def test_lab_legacy_partners(
    legacy_lab: dict[str, int],
    scenario: str,
    version: str,
    suites: list[int],
    server_order: bool | None,
) -> None:
    result = await scan_port(legacy_lab[scenario])
    assert_same_sets(result, {version: set(suites)})
    got = found(result)
    assert got[version] == suites, names(got[version])
    p = next(p for p in result.protocols if p.version == version)
    assert p.server_order is server_order
    assert [p.version for p in result.protocols if p.supported] == [version]
    assert set(result.certificates) == {"RSA"}


# --------------------------------------------------------------------------- intolerant partner

# Old middleware that closes the connection on a long hello, and picks in its own order: TLS 1.2
# only, at most this many suites per hello, these suites best first. The order crosses the
# chunks a scan of an intolerant server offers (`probe.scan.CHUNK` suites each, registry
# order), so a scan that only drained chunk by chunk would report them in another order.
PICKY_MAX_SUITES = 64
PICKY_ORDER = (0xC030, 0x000A, 0x009C, 0x0035, 0x002F)


async def picky_partner(stream: trio.SocketStream) -> None:
    from probe.lab.tlsserver import read_client_hello
    from probe.wire.messages import build_server_hello
    from probe.wire.record import ContentType, build_alert, build_records

    first = await read_client_hello(stream)
    hello = first.hello
    if hello is None or len(hello.suites) > PICKY_MAX_SUITES:
        return  # EOF: what intolerant middleware does
    pick = next((c for c in PICKY_ORDER if c in hello.suites), None)
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        if hello.legacy_version != 0x0303 or hello.supported_versions or pick is None:
            await stream.send_all(build_alert(70 if pick else 40, version=0x0303))
            return
        sh = build_server_hello(cipher_suite=pick, random=os.urandom(32))
        await stream.send_all(build_records(ContentType.HANDSHAKE, 0x0303, sh))


async def test_intolerant_server_order_partner() -> None:
    from bytepeers import serve_script

    async with serve_script(picky_partner) as port:
        result = await scan_port(port)
    assert_same_sets(result, {"TLSv1.2": set(PICKY_ORDER)})
    tls12 = next(p for p in result.protocols if p.version == "TLSv1.2")
    assert tls12.intolerance and "closed on a hello" in tls12.intolerance
    assert tls12.server_order is True and tls12.note is None
    assert found(result)["TLSv1.2"] == list(PICKY_ORDER), names(found(result)["TLSv1.2"])


# --------------------------------------------------------------------------- the command line


def tlsprobe(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", *map(str, args)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def check_doc(doc: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(doc, scan_schema())
    if doc["outcome"] == "scanned":
        assert [p["version"] for p in doc["protocols"]] == list(VERSION_NAMES)
    else:
        assert doc["protocols"] == [] and doc["error"]
    return doc


@pytest.fixture
def short_servers(pki: TestPKI) -> Iterator[tuple[Peer, Peer]]:
    with (
        openssl_server(s_server_short(pki, serverpref=True)) as a,
        openssl_server(s_server_short(pki, serverpref=False)) as b,
    ):
        yield a, b


def test_cli_scan_json(short_servers: tuple[Peer, Peer]) -> None:
    peer, _ = short_servers
    proc = tlsprobe("scan", peer.hostport, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = check_doc(json.loads(proc.stdout))
    assert doc["outcome"] == "scanned" and doc["target"] == peer.hostport
    tls12 = next(p for p in doc["protocols"] if p["version"] == "TLSv1.2")
    assert tls12["supported"] is True and tls12["server_order"] is True
    assert [c["code"] for c in tls12["ciphers"]] == [f"0x{c:04X}" for c in SHORT_TLS12]
    assert [c["openssl"] for c in tls12["ciphers"]] == names(SHORT_TLS12)
    assert tls12["ciphers"][1]["iana"] == "TLS_RSA_WITH_AES_128_CBC_SHA"
    ssl3 = next(p for p in doc["protocols"] if p["version"] == "SSLv3")
    assert ssl3 == {**ssl3, "supported": False, "ciphers": []}
    assert doc["connections"] >= 10


def test_cli_scan_file_prints_one_json_line_per_target(
    short_servers: tuple[Peer, Peer], tmp_path: Path
) -> None:
    a, b = short_servers
    targets = tmp_path / "targets.txt"
    targets.write_text(f"# partners\n{a.hostport}\n\n{b.hostport}  # the second one\n")
    proc = tlsprobe("scan", "-f", targets)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, proc.stdout
    docs = {d["target"]: d for d in (check_doc(json.loads(line)) for line in lines)}
    assert set(docs) == {a.hostport, b.hostport}
    order = {t: next(p["server_order"] for p in d["protocols"] if p["version"] == "TLSv1.2")
             for t, d in docs.items()}  # fmt: skip
    assert order == {a.hostport: True, b.hostport: False}


def test_cli_scan_unreachable_target_exits_1(
    short_servers: tuple[Peer, Peer], tmp_path: Path
) -> None:
    closed = f"{HOST}:{free_port()}"
    proc = tlsprobe("scan", closed, "--json")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    doc = check_doc(json.loads(proc.stdout))
    assert doc["outcome"] == "refused" and doc["target"] == closed
    # With -f, one unreachable target makes the exit code 1; the others are still scanned.
    targets = tmp_path / "targets.txt"
    targets.write_text(f"{short_servers[0].hostport}\n{closed}\n")
    proc = tlsprobe("scan", "-f", targets)
    assert proc.returncode == 1
    outcomes = {d["target"]: d["outcome"] for d in map(json.loads, proc.stdout.splitlines())}
    assert outcomes == {short_servers[0].hostport: "scanned", closed: "refused"}


BAD_INPUT = {
    "nothing": [],
    "bad-port": ["127.0.0.1:99999"],
    "target-and-file": ["127.0.0.1:443", "-f", "targets.txt"],
    "missing-file": ["-f", "no-such-file.txt"],
    "directory": ["-f", "."],
    "empty-file": ["-f", "empty.txt"],
    "per-host-0": ["127.0.0.1:443", "--per-host", "0"],
    "timeout-0": ["127.0.0.1:443", "--timeout", "0"],
    "bad-starttls": ["127.0.0.1:443", "--starttls", "gopher"],
}


@pytest.mark.parametrize("args", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_cli_scan_bad_input_exits_2(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "targets.txt").write_text("127.0.0.1:443\n")
    (tmp_path / "empty.txt").write_text("# nothing here\n\n")
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "scan", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ----------------------------------------------------------------- peers that never speak TLS


@pytest.mark.parametrize(
    ("handler", "starttls", "outcome", "words"),
    [
        ("banner", "none", "not_tls", ["'220 FTP ready..'", "--starttls"]),
        ("http", "none", "not_tls", ["HTTP/1.1 400 Bad Request"]),
        ("ftp-without-tls", "ftp", "starttls_refused", ["ftp upgrade failed", "'500"]),
        ("close", "none", "peer_closed", ["closed every connection"]),
        ("silent", "none", "timeout", ["answered none of"]),
        ("alert40", "none", "cipher_mismatch", ["refused (alert 40 handshake_failure)"]),
        ("alert112", "none", "peer_error", ["alert 112 unrecognized_name", "--mq-channel"]),
    ],
)
async def test_scan_names_a_peer_that_never_speaks_tls(
    handler: str, starttls: str, outcome: str, words: list[str]
) -> None:
    """A banner, an HTTP answer, silence, a hang-up or an alert to every hello is one outcome
    with the reason (the probe's names for the same failures), not six versions "not
    offered"."""
    import bytepeers as bp

    handlers = {
        "banner": bp.plaintext_banner(),
        "http": bp.plaintext_banner(bp.HTTP_RESPONSE, wait_for_input=True),
        "ftp-without-tls": bp.plaintext_banner(bp.FTP_BANNER + b"500 AUTH not understood\r\n"),
        "close": bp.close_after_hello,
        "silent": bp.silent,
        "alert40": bp.alert_after_hello(40),
        "alert112": bp.alert_after_hello(112),
    }
    timeout = 0.5
    async with bp.serve_script(handlers[handler]) as port:
        opts = ScanOptions(target=Target(host=HOST, port=port), starttls=starttls, timeout=timeout)
        with trio.fail_after(10 * timeout):
            result = await scan(opts)
    jsonschema.validate(json.loads(json.dumps(to_jsonable(result))), scan_schema())
    assert result.outcome == outcome, result.error
    assert result.error is not None
    for w in words:
        assert w in result.error, result.error
    assert result.protocols == ()


def test_cli_scan_of_a_plaintext_port_exits_1_and_says_so() -> None:
    import bytepeers as bp

    async def run() -> subprocess.CompletedProcess[str]:
        async with bp.serve_script(bp.plaintext_banner()) as port:
            return await trio.to_thread.run_sync(tlsprobe, "scan", f"{HOST}:{port}")

    proc = trio.run(run)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "FAIL not_tls: the peer answered '220 FTP ready..'" in proc.stdout, proc.stdout


def test_cli_scan_of_an_mq_listener_that_picks_its_certificate_by_channel(tmp_path: Path) -> None:
    """The lab's mq-certlabl refuses every name but its channels' SNI with alert 112: without
    a name the scan says so (exit 1, the hint to use --mq-channel); with the channel it scans."""
    with running_lab(tmp_path / "pki", "mq-certlabl") as lab:
        target = f"{HOST}:{lab.ports['mq-certlabl']}"
        refused = tlsprobe("scan", target, "--json")
        named = tlsprobe("scan", target, "--mq-channel", "TO.QMGR1", "--json")
        both = tlsprobe("scan", target, "--mq-channel", "TO.QMGR1", "--sni", "x")
    assert refused.returncode == 1, refused.stderr
    doc = check_doc(json.loads(refused.stdout))
    assert doc["outcome"] == "peer_error" and "--mq-channel" in doc["error"]
    assert named.returncode == 0, named.stderr
    doc = check_doc(json.loads(named.stdout))
    assert doc["outcome"] == "scanned"
    assert any(p["supported"] for p in doc["protocols"])
    assert both.returncode == 2 and "drop --sni" in both.stderr
