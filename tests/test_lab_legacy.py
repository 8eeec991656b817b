"""The legacy partners (`sslv3-only`, `legacy-3des`) complete real handshakes with real clients.

Clients we did not write:

* sslyze 6 scans both partners version by version: nassl's OpenSSL 1.0.2 for SSL 3.0 to
  TLS 1.1 (RC4, 3DES), a current OpenSSL for TLS 1.2 and 1.3; its ROBOT check sends broken
  RSA premasters and compares the answers (RFC 5246 §7.4.7.1 says they must not differ).
* nassl directly: application data in every suite, then a renegotiation attempt whose
  encrypted refusal proves the records before it decrypted and authenticated; and the
  SSLv2-compatible ClientHello of RFC 5246 Appendix E.2, which nassl sends when SSLv2 suites
  are enabled (a relay checks the bytes).
* gnutls-cli for TLS 1.0 and 1.1 with every suite: application data and close_notify both ways.
* openssl s_client where the system OpenSSL still has 3DES (Debian's 3.0 has none).

Then scripted bytes for what no real client does (broken premasters, wrong Finished, garbage),
the published TLS 1.0 PRF test vector, and tlsprobe's own probe, which still refuses both.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import trio
from bytepeers import serve_script
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from hypothesis import given, settings
from hypothesis import strategies as st
from labproc import Lab, running_lab
from probing import causes, probe_port

from probe.lab import legacycrypto as lc
from probe.lab import legacytls as lt
from probe.lab.scripted import SSL3_SUITES, TLS11_3DES_SUITES, legacy_handler
from probe.pki import TestPKI
from probe.wire.buffer import u16
from probe.wire.handshake import HandshakeMessage
from probe.wire.hello import (
    ClientHelloSpec,
    build_client_hello,
    build_client_hello_message,
    build_sslv2_client_hello,
    parse_client_hello,
)
from probe.wire.record import Record, build_alert, parse_records

LEGACY = ("sslv3-only", "legacy-3des")
SSL3, TLS10, TLS11 = lc.SSL3, lc.TLS10, lc.TLS11
ALL_SUITES = (0x000A, 0x002F, 0x0005, 0x0004)


def names(codes: tuple[int, ...]) -> set[str]:
    return {lc.SUITES[c].name for c in codes}


# --- the lab, started as a user starts it -------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("legacy-lab-pki"), *LEGACY) as running:
        yield running


# --- sslyze ---------------------------------------------------------------------------------------


def sslyze_python() -> str:
    """An interpreter with sslyze and nassl: this one if it has them, else the one named by
    $TLSPROBE_SSLYZE_PYTHON, else the one behind an `sslyze` on PATH (a pipx-style install).
    sslyze 6.3 pins cryptography<47, so it lives best in an environment of its own."""
    if importlib.util.find_spec("sslyze") is not None:
        return sys.executable
    if env := os.environ.get("TLSPROBE_SSLYZE_PYTHON"):
        return env
    if exe := shutil.which("sslyze"):
        first = Path(exe).read_text(errors="replace").splitlines()[0]
        if first.startswith("#!"):
            return first[2:].strip()
    pytest.fail(
        "sslyze is not installed: put it on PATH in its own environment (pipx install sslyze)"
        " or name its interpreter in TLSPROBE_SSLYZE_PYTHON; in the project's environment its"
        " pin cryptography<47 would replace the cryptography the suite is written against",
        False,
    )


@pytest.fixture(scope="module")
def sslyze(lab: Lab) -> dict[str, dict[str, Any]]:
    """One sslyze run over both partners: scan results by scenario name."""
    targets = {f"127.0.0.1:{lab.ports[n]}": n for n in LEGACY}
    proc = subprocess.run(
        [sslyze_python(), "-m", "sslyze", "--mozilla_config", "disable", "--json_out=-",
         "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", "--robot",
         *targets],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    out: dict[str, dict[str, Any]] = {}
    for server in doc["server_scan_results"]:
        loc = server["server_location"]
        assert server["connectivity_status"] == "COMPLETED", server["connectivity_error_trace"]
        out[targets[f"{loc['hostname']}:{loc['port']}"]] = server["scan_result"]
    return out


def accepted(scan: dict[str, Any], key: str) -> set[str]:
    attempt = scan[key]
    assert attempt["status"] == "COMPLETED", attempt["error_trace"]
    return {c["cipher_suite"]["name"] for c in attempt["result"]["accepted_cipher_suites"]}


_TLS_SCANS = ("tls_1_0", "tls_1_1", "tls_1_2", "tls_1_3")


def test_sslyze_sees_ssl3_suites_and_nothing_newer(sslyze: dict[str, dict[str, Any]]) -> None:
    scan = sslyze["sslv3-only"]
    assert accepted(scan, "ssl_3_0_cipher_suites") == names(SSL3_SUITES)
    for version in ("ssl_2_0", *_TLS_SCANS):
        assert accepted(scan, f"{version}_cipher_suites") == set(), version


def test_sslyze_sees_exactly_3des_in_tls11(sslyze: dict[str, dict[str, Any]]) -> None:
    scan = sslyze["legacy-3des"]
    assert accepted(scan, "tls_1_1_cipher_suites") == {"TLS_RSA_WITH_3DES_EDE_CBC_SHA"}
    assert names(TLS11_3DES_SUITES) == {"TLS_RSA_WITH_3DES_EDE_CBC_SHA"}
    for version in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_2", "tls_1_3"):
        assert accepted(scan, f"{version}_cipher_suites") == set(), version


def test_sslyze_finds_no_bleichenbacher_oracle(sslyze: dict[str, dict[str, Any]]) -> None:
    for name in LEGACY:
        robot = sslyze[name]["robot"]
        assert robot["status"] == "COMPLETED", robot["error_trace"]
        assert robot["result"]["robot_result"] == "NOT_VULNERABLE_NO_ORACLE", name


# --- nassl: application data, renegotiation, the SSLv2-compatible hello ---------------------------

NASSL_CLIENT = """
import socket, sys
from nassl.legacy_ssl_client import LegacySslClient
from nassl.ssl_client import OpenSslVerifyEnum, OpenSslVersionEnum
port, version, ciphers = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sock = socket.create_connection(("127.0.0.1", port), timeout=5)
client = LegacySslClient(underlying_socket=sock, ssl_version=OpenSslVersionEnum[version],
                         ssl_verify=OpenSslVerifyEnum.NONE)
client.set_cipher_list(ciphers)
client.do_handshake()
print("cipher", client.get_current_cipher_name(), flush=True)
for size in (1, 1000, 16000):
    client.write(b"x" * size)
try:
    client.do_renegotiate()
    print("renegotiated")
except Exception as exc:
    print("refused", exc)
"""


async def nassl(port: int, version: str, ciphers: str) -> str:
    proc = await trio.run_process(
        [sslyze_python(), "-c", NASSL_CLIENT, str(port), version, ciphers],
        capture_stdout=True, capture_stderr=True, check=False,
    )  # fmt: skip
    return (proc.stdout + proc.stderr).decode(errors="replace")


@pytest.mark.parametrize(
    ("name", "version", "cipher", "refusal"),
    [
        *[("sslv3-only", "SSLV3", c, "sslv3 alert handshake failure")
          for c in ("RC4-MD5", "RC4-SHA", "DES-CBC3-SHA", "AES128-SHA")],
        ("legacy-3des", "TLSV1_1", "DES-CBC3-SHA", "no renegotiation"),
    ],
)  # fmt: skip
async def test_nassl_exchanges_data_then_is_refused_renegotiation(
    lab: Lab, name: str, version: str, cipher: str, refusal: str
) -> None:
    # The renegotiation ClientHello comes after three application-data records; the partner
    # can only refuse it (SSL 3.0: fatal handshake_failure; TLS: warning no_renegotiation,
    # which OpenSSL 1.0.2 makes fatal) if all of them decrypted and authenticated, and the
    # client can only name the alert if the partner's encryption is right too.
    out = await nassl(lab.ports[name], version, cipher)
    assert f"cipher {cipher}" in out, out
    assert "bad record mac" not in out, out
    assert refusal in out, out


@pytest.mark.parametrize(
    ("name", "cipher"), [("sslv3-only", "RC4-MD5"), ("legacy-3des", "DES-CBC3-SHA")]
)
async def test_sslv2_compatible_hello_is_answered(lab: Lab, name: str, cipher: str) -> None:
    seen: list[bytes] = []

    async def relay(client: trio.SocketStream) -> None:
        upstream = await trio.open_tcp_stream("127.0.0.1", lab.ports[name])
        async with upstream, trio.open_nursery() as nursery:

            async def pump(src: trio.SocketStream, dst: trio.SocketStream, log: bool) -> None:
                with trio.move_on_after(10):
                    while data := await src.receive_some(65536):
                        if log:
                            seen.append(data)
                        await dst.send_all(data)
                nursery.cancel_scope.cancel()

            nursery.start_soon(pump, client, upstream, True)
            nursery.start_soon(pump, upstream, client, False)

    async with serve_script(relay) as port:
        # nassl's OpenSSL 1.0.2 with SSLv2 suites enabled speaks the E.2 hello for TLS 1.2.
        out = await nassl(port, "SSLV23", "ALL:COMPLEMENTOFALL")
    first = b"".join(seen)
    assert first[0] & 0x80 and first[2] == 1 and first[3:5] == b"\x03\x03", first[:8].hex()
    assert f"cipher {cipher}" in out, out


# --- gnutls-cli: TLS 1.0 and 1.1, application data and close_notify -------------------------------

GNUTLS_SUITES = {
    0x000A: "+3DES-CBC:+SHA1",
    0x002F: "+AES-128-CBC:+SHA1",
    0x0005: "+ARCFOUR-128:+SHA1",
    0x0004: "+ARCFOUR-128:+MD5",
}
GNUTLS_VERSION = {TLS10: "+VERS-TLS1.0", TLS11: "+VERS-TLS1.1"}


async def gnutls_cli(port: int, ca: Path, version: int, suite: int) -> str:
    priority = ":".join(
        ("NONE", GNUTLS_VERSION[version], "+RSA", "+COMP-NULL", "+SIGN-ALL", "+CTYPE-X509",
         GNUTLS_SUITES[suite])
    )  # fmt: skip
    proc = await trio.run_process(
        [shutil.which("gnutls-cli") or "/usr/bin/gnutls-cli", "--priority", priority,
         "--x509cafile", str(ca), "--verify-hostname", "localhost", "-p", str(port), "127.0.0.1"],
        stdin=b"a line of application data\n", capture_stdout=True, capture_stderr=True,
        check=False,
    )  # fmt: skip
    return (proc.stdout + proc.stderr).decode(errors="replace")


def assert_gnutls_session(out: str, version: int, suite: int) -> None:
    vname = {TLS10: "TLS1.0", TLS11: "TLS1.1"}[version]
    cipher, mac = GNUTLS_SUITES[suite].replace("+", "").split(":")
    assert f"({vname}-X.509)-(RSA)-({cipher})-({mac})" in out, out
    assert "The certificate is trusted" in out, out
    # gnutls-cli sends the line, then close_notify at end of input, and says this only when
    # the partner's own close_notify decrypted: the partner read everything before it.
    assert "Peer has closed the GnuTLS connection" in out, out
    assert "Error" not in out and "alert" not in out.lower(), out


async def test_gnutls_cli_talks_to_legacy_3des(lab: Lab) -> None:
    out = await gnutls_cli(lab.ports["legacy-3des"], lab.ca, TLS11, 0x000A)
    assert_gnutls_session(out, TLS11, 0x000A)


@pytest.mark.parametrize("version", [TLS10, TLS11], ids=["tls1.0", "tls1.1"])
@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: lc.SUITES[s].name)
async def test_gnutls_cli_every_suite_in_tls10_and_tls11(
    pki: TestPKI, version: int, suite: int
) -> None:
    # The same partner code at other versions: TLS 1.0's chained CBC IV, TLS 1.1's explicit one.
    async with serve_script(legacy_handler(pki, version, ALL_SUITES)) as port:
        out = await gnutls_cli(port, pki.ca, version, suite)
    assert_gnutls_session(out, version, suite)


# --- openssl s_client ---------------------------------------------------------------------------


def test_s_client_cannot_speak_3des_so_gnutls_and_sslyze_do() -> None:
    # Debian's OpenSSL 3.0 has no 3DES suite and no SSL 3.0 at any security level, so
    # `openssl s_client` cannot be the outside witness for these partners; gnutls-cli (above)
    # and sslyze's legacy OpenSSL (below) are. This test fails if that ever changes, so the
    # s_client check can be added then.
    proc = subprocess.run(
        ["openssl", "ciphers", "DES-CBC3-SHA:@SECLEVEL=0"], capture_output=True, check=False
    )
    assert proc.returncode != 0


# --- tlsprobe's own probe still refuses both ------------------------------------------------------


@pytest.mark.parametrize("name", LEGACY)
async def test_tlsprobe_default_probe_still_reports_version_mismatch(lab: Lab, name: str) -> None:
    r = await probe_port(lab.ports[name], ca=lab.ca)
    assert r.outcome == "version_mismatch", (r.alert, r.error, r.diagnosis)
    assert causes(r)[0] == "partner_version_too_old"


# --- refusals at the wire -------------------------------------------------------------------------


async def first_answer(port: int, hello: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(hello)
        with trio.fail_after(5):
            return await stream.receive_some(64)


def tls_hello(version: int, suites: tuple[int, ...]) -> bytes:
    return build_client_hello(
        ClientHelloSpec(legacy_version=version, suites=suites, random=os.urandom(32))
    )


async def test_refusals_at_the_wire(lab: Lab) -> None:
    tls11 = lab.ports["legacy-3des"]
    below = await first_answer(tls11, tls_hello(TLS10, (0x000A,)))
    assert below == build_alert(70, version=TLS11)
    no_common = await first_answer(tls11, tls_hello(TLS11, (0x002F,)))
    assert no_common == build_alert(40, version=TLS11)
    sslv2 = await first_answer(
        lab.ports["sslv3-only"], build_sslv2_client_hello((0x010080,), os.urandom(16))
    )
    assert sslv2 == build_alert(70, version=SSL3)


async def test_a_client_silent_after_the_server_flight_is_dropped(
    pki: TestPKI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lt, "HANDSHAKE_DEADLINE", 0.5)
    async with serve_script(legacy_handler(pki, TLS11, ALL_SUITES)) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(tls_hello(TLS11, (0x000A,)))
            with trio.fail_after(5):
                while await stream.receive_some(65536):
                    pass  # the flight, then EOF once the deadline passed


# --- the session, sans IO, driven by a client made of the module's own primitives ---------------


@dataclass
class Conversation:
    session: lt.LegacySession
    transcript: bytes

    @property
    def version(self) -> int:
        return self.session.version


@cache
def rsa_key(path: Path) -> rsa.RSAPrivateKey:
    key = load_pem_private_key(path.read_bytes(), None)  # slow (key checks): once per file
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def open_session(pki: TestPKI, version: int, suite: int) -> Conversation:
    key = rsa_key(pki.good.key)
    # The Certificate's content plays no part in the key exchange; any DER will do.
    partner = lt.Partner(version=version, suites=(suite,), chain=(b"\x30\x00",), key=key)
    msg = build_client_hello_message(
        ClientHelloSpec(legacy_version=version, suites=(suite,), random=os.urandom(32))
    )
    session = lt.LegacySession(
        partner=partner, suite=suite, hello=parse_client_hello(msg[4:]), hello_message=msg
    )
    session.start()
    records, rest = parse_records(session.data_to_send())
    assert not rest and {r.content_type for r in records} == {22}
    return Conversation(session=session, transcript=msg + b"".join(r.fragment for r in records))


@dataclass
class ClientFlight:
    wire: bytes  # ClientKeyExchange, ChangeCipherSpec, Finished
    ours: lc.RecordCipher  # client write
    theirs: lc.RecordCipher  # server write, to read the partner's records
    transcript: bytes  # through the client's Finished
    master: bytes


def client_second_flight(
    c: Conversation,
    *,
    premaster: bytes | None = None,
    ciphertext: bytes | None = None,
    finished_ok: bool = True,
) -> ClientFlight:
    s, v = c.session, c.version
    premaster = premaster or u16(s.hello.legacy_version) + os.urandom(46)
    if ciphertext is None:
        ciphertext = s.partner.key.public_key().encrypt(premaster, padding.PKCS1v15())
    cke = HandshakeMessage(msg_type=16, body=ciphertext if v == SSL3 else u16(256) + ciphertext)
    transcript = c.transcript + cke.to_bytes()
    master = lc.master_secret(v, premaster, s.hello.random, s.server_random)
    ours, theirs = lc.derive_ciphers(v, s.suite, master, s.hello.random, s.server_random)
    verify = lc.finished_verify_data(v, master, transcript, client=True)
    fin = HandshakeMessage(msg_type=20, body=verify if finished_ok else bytes(len(verify)))
    wire = (
        Record(content_type=22, version=v, fragment=cke.to_bytes()).to_bytes()
        + Record(content_type=20, version=v, fragment=b"\x01").to_bytes()
        + Record(content_type=22, version=v, fragment=ours.seal(22, fin.to_bytes())).to_bytes()
    )
    return ClientFlight(
        wire=wire, ours=ours, theirs=theirs, transcript=transcript + fin.to_bytes(), master=master
    )


VERSIONS = pytest.mark.parametrize(
    "version", [SSL3, TLS10, TLS11], ids=["ssl3", "tls1.0", "tls1.1"]
)


@VERSIONS
@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: lc.SUITES[s].name)
def test_sanity_conversation(pki: TestPKI, version: int, suite: int) -> None:
    c = open_session(pki, version, suite)
    f = client_second_flight(c)
    ours, theirs = f.ours, f.theirs
    assert c.session.receive_data(f.wire) == [lt.HandshakeDone(version=version, suite=suite)]
    records, _ = parse_records(c.session.data_to_send())
    assert [r.content_type for r in records] == [20, 22]
    finished = theirs.open(22, version, records[1].fragment)
    assert finished[4:] == lc.finished_verify_data(version, f.master, f.transcript, client=False)
    data = b"".join(
        Record(content_type=23, version=version, fragment=ours.seal(23, chunk)).to_bytes()
        for chunk in (b"", b"one", b"x" * 16384)
    )
    events = c.session.receive_data(data)
    assert events == [lt.ApplicationData(data=b"one"), lt.ApplicationData(data=b"x" * 16384)]
    close = Record(content_type=21, version=version, fragment=ours.seal(21, b"\x01\x00"))
    assert c.session.receive_data(close.to_bytes()) == [lt.Closed(reason="close_notify", alert=0)]
    (answer,), _ = parse_records(c.session.data_to_send())
    assert theirs.open(21, version, answer.fragment) == b"\x01\x00"


@VERSIONS
def test_a_broken_premaster_fails_at_finished_not_before(pki: TestPKI, version: int) -> None:
    # RFC 5246 §7.4.7.1: garbage, a wrong length or a rolled-back version all continue with a
    # random premaster, so the client's Finished fails to authenticate: bad_record_mac.
    rolled_back = SSL3 if version != SSL3 else TLS10
    for premaster, ciphertext in (
        (None, os.urandom(256)),
        (None, b"\x00" * 256),
        (u16(rolled_back) + os.urandom(46), None),
        (u16(version) + os.urandom(40), None),
    ):
        c = open_session(pki, version, 0x000A)
        flight = client_second_flight(c, premaster=premaster, ciphertext=ciphertext)
        events = c.session.receive_data(flight.wire)
        assert events == [lt.Closed(reason="alert_sent", alert=20)], (premaster, ciphertext)
        assert c.session.data_to_send() == build_alert(20, version=version)


@VERSIONS
def test_a_wrong_finished_is_a_decrypt_error(pki: TestPKI, version: int) -> None:
    c = open_session(pki, version, 0x002F)
    c.session.receive_data(client_second_flight(c, finished_ok=False).wire)
    alert = 40 if version == SSL3 else 51  # SSL 3.0 has no decrypt_error (RFC 6101 §5.4.2)
    assert c.session.data_to_send() == build_alert(alert, version=version)


def test_application_data_before_finished_is_unexpected(pki: TestPKI) -> None:
    c = open_session(pki, TLS11, 0x000A)
    c.session.receive_data(Record(content_type=23, version=TLS11, fragment=b"hi").to_bytes())
    assert c.session.data_to_send() == build_alert(10, version=TLS11)
    assert c.session.closed


@settings(max_examples=150, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=400),
        # Plausible record headers with random bodies reach past the header checks.
        st.builds(
            lambda t, body: bytes([t, 3, 2]) + u16(len(body)) + body,
            st.sampled_from([20, 21, 22, 23, 24]),
            st.binary(max_size=300),
        ),
    ),
    version=st.sampled_from([SSL3, TLS11]),
)
def test_garbage_never_raises(pki: TestPKI, data: bytes, version: int) -> None:
    # Fed whole and one byte at a time: either nothing happens yet, or one fatal alert.
    for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
        c = open_session(pki, version, 0x0005)
        for chunk in chunks:
            c.session.receive_data(chunk)
        out = c.session.data_to_send()
        assert not out or (out[0] == 21 and len(out) == 7 and c.session.closed), out.hex()
        c.session.receive_data(b"")
        assert c.session.closed


def test_published_tls10_prf_vector() -> None:
    # The "PRF Testvector" for TLS 1.0/1.1 that TLS libraries test their P_MD5 xor P_SHA1 with.
    out = lc.tls10_prf(b"\xab" * 48, b"PRF Testvector", b"\xcd" * 64, 104)
    assert out.hex() == (
        "d3d4d1e349b5d515044666d51de32bab258cb521b6b053463e354832fd976754"
        "443bcf9a296519bc289abcbc1187e4ebd31e602353776c408aafb74cbc85eff6"
        "9255f9788faa184cbb957a9819d84a5d7eb006eb459d3ae8de9810454b8b2d8f"
        "1afbc655a8c9a013"
    )
