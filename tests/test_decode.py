"""`tlsprobe decode`: the seeds' own hex traces decoded to what their annotations say, real
handshakes round-tripped through `probe --trace --json`, every dump style, and the promise
that no input, however damaged, ends in anything but a result or one clean error.

The seed excerpts in tests/data/seeds/ are copied verbatim from ../shared/seeds/ (each file
names its source lines in its first comment lines), OCR damage included.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from probing import schema

from probe.decode import DecodeResult, Item, decode_bytes, decode_text
from probe.hexdump import read_dump
from probe.pki import TestPKI
from probe.render import render_decode
from probe.result import to_jsonable
from probe.wire.errors import DecodeError
from probe.wire.messages import build_certificate, build_server_hello
from probe.wire.record import build_records

SEEDS = Path(__file__).parent / "data" / "seeds"


def decode_schema() -> dict[str, Any]:
    return schema("decode")


@cache
def validator() -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(decode_schema())
    return jsonschema.Draft202012Validator(decode_schema())


def as_json(result: DecodeResult) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(to_jsonable(result)))
    validator().validate(doc)
    return doc


def seed(name: str) -> DecodeResult:
    return decode_text((SEEDS / name).read_text())


def messages(r: DecodeResult, name: str) -> list[Item]:
    return [it for it in r.items if it.name == name]


def codes(it: Item) -> list[str]:
    return [s.code for s in it.cipher_suites]


def tlsprobe(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "probe", *map(str, args)],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


# --- z/OS System SSL trace (seed 003) ---------------------------------------------------------


def test_zos_client_hello_dump() -> None:
    r = seed("zos_client_hello.txt")
    as_json(r)
    (ch,) = r.items
    assert ch.kind == "handshake" and ch.name == "ClientHello" and ch.direction == "client"
    assert ch.records == ()  # z/OS dumps the message without its record header
    # "Calling read routine for 49 bytes ... 49 bytes received": header 4 + body 45.
    assert ch.length == 45 and ch.present == 45 and ch.missing == 0 and not ch.problems
    assert ch.version == "TLSv1.1"
    # "Renegotiation Indication signaled by initial CLIENT-HELLO": the SCSV; the server's
    # "SSL V3 cipher specs: 0A2F" are offered too.
    assert codes(ch) == ["0x00FF", "0x000A", "0x002F"]
    assert ch.cipher_suites[0].iana == "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
    assert ch.session_id == "" and ch.compression == (0,)
    assert ch.extensions is None  # no extension block at all
    assert ch.random is not None and ch.random.startswith("50898bf6")


def test_zos_server_hello_dump() -> None:
    r = seed("zos_server_hello.txt")
    as_json(r)
    (sh,) = r.items
    assert sh.name == "ServerHello" and sh.direction == "server" and sh.records == ()
    assert sh.length == 0x4D and not sh.problems  # "Message length is decimal 77"
    # "Using TLSV1.1 protocol", "Using V3 cipher specification 0A"
    assert sh.version == sh.selected_version == "TLSv1.1"
    assert sh.cipher_suite is not None and sh.cipher_suite.code == "0x000A"
    assert sh.cipher_suite.iana == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    assert sh.cipher_suite.openssl == "DES-CBC3-SHA"
    assert sh.compression == (0,)  # "No compression in use"
    # "FF01 Renegotiation Request / 000100 Initial handshake, no renegotiation"
    assert sh.extensions is not None
    (reneg,) = sh.extensions
    assert (reneg.type, reneg.name, reneg.length) == (0xFF01, "renegotiation_info", 1)
    assert reneg.detail is not None and "initial handshake" in reneg.detail
    # "SID length is decimal 32"; System SSL puts the client's address in it: 192.168.20.91
    # port 1034 (the trace's "Establishing secure connection with 192.168.20.91.1034").
    assert sh.session_id is not None and len(sh.session_id) == 64
    assert "c0a8145b040a" in sh.session_id
    # The first four random bytes are gmt_unix_time: 18:59:02 UTC, the trace's 13:59:02 local.
    assert any("gmt_unix_time 2012-10-25T18:59:02Z" in d for d in sh.details)


def test_zos_certificate_dumps_are_cut_and_say_how_many_bytes_are_missing() -> None:
    r = seed("zos_certificates.txt")
    as_json(r)
    der = [it for it in r.items if it.kind == "certificate"]
    cert_msgs = messages(r, "Certificate")
    assert len(der) == 2 and len(cert_msgs) == 1
    # "Encoded signature stream": a bare DER certificate, 30820275 = 633 bytes, 5 lines shown,
    # but OCR lost a digit of its third group ("A030201"): only the 8 bytes before it count.
    first = der[0].certificates[0]
    assert (first.length, first.present, first.missing) == (633, 8, 625)
    # The CERTIFICATE message: 0B 000523, the first certificate 0x2A1 = 673 bytes of it, read
    # up to the group that lost a digit ("0692A86", inside the signature algorithm).
    msg = cert_msgs[0]
    assert (msg.length, msg.present) == (0x523, 24) and msg.missing == 0x523 - 24
    c = msg.certificates[0]
    assert (c.length, c.present, c.missing) == (673, 18, 655)
    assert c.serial == "06"  # before the damage
    assert c.issuer is None  # after it: not read from bytes whose place is a guess
    assert any("damaged here (group '0692A86' on line 20" in p for p in msg.problems)
    notes = [n for ch in r.chunks for n in ch.notes]
    assert any("'0692A86'" in n and "unknown" in n for n in notes)
    # The second dump of the stream jumps from 0x100 to 0x270: a gap, not invented bytes.
    assert any("skips 352 bytes" in n for n in notes)
    assert any(it.kind == "continuation" for it in r.items)


# --- Transfer CFT traces (seed 004) -----------------------------------------------------------


def test_cft_double_authentication_trace() -> None:
    r = seed("cft_double_auth.txt")
    as_json(r)
    names = [it.name for it in r.items if it.kind == "handshake"]
    # Client side: hello (cut), ServerHello, Certificate, CertificateRequest, ServerHelloDone,
    # then its own Certificate, ClientKeyExchange, CertificateVerify; the server side again.
    assert names[:8] == [
        "ClientHello", "ServerHello", "Certificate", "CertificateRequest", "ServerHelloDone",
        "Certificate", "ClientKeyExchange", "CertificateVerify",
    ]  # fmt: skip
    hellos = messages(r, "ClientHello")
    # The client-side dump shows three of the hello's four lines: 10 bytes missing.
    cut, whole = hellos[0], hellos[1]
    assert cut.missing == 10 and codes(cut) == ["0x002F"]
    assert any("5 offered, 1 present" in d for d in cut.details)
    # The server side received it whole: CIPHLIST = (47, 10, 9, 1, 2).
    assert codes(whole) == ["0x002F", "0x000A", "0x0009", "0x0001", "0x0002"]
    assert [s.openssl for s in whole.cipher_suites] == [
        "AES128-SHA", "DES-CBC3-SHA", "DES-CBC-SHA", "NULL-MD5", "NULL-SHA",
    ]  # fmt: skip
    assert whole.version == "TLSv1.0" and whole.extensions is None and not whole.problems
    # "CIPHER = 47 AUTH = BOTH": both ServerHellos choose 0x002F at TLS 1.0 ("SSL V 3.1").
    for sh in messages(r, "ServerHello"):
        assert sh.selected_version == "TLSv1.0" and sh.direction == "server"
        assert sh.cipher_suite is not None and sh.cipher_suite.code == "0x002F"
        assert sh.records[0].version == "TLSv1.0" and sh.records[0].length == 0x2A
    # "16030105 AD0B": a Certificate message of 0x05A9 bytes, printed for 3 lines only.
    cert = messages(r, "Certificate")[0]
    assert cert.records[0].length == 0x05AD and cert.length == 0x05A9
    assert cert.missing == 0x05AD - 43 and cert.certificates[0].length == 0x1DD
    # "16030100 370D: 0D => Certificate_Request" (the line's groups were swapped by OCR).
    req = messages(r, "CertificateRequest")[0]
    assert req.certificate_types == ("rsa_sign",) and req.ca_names_bytes == 0x2F
    assert len(req.ca_names) == 1 and not req.missing
    assert any("groups reordered" in n for ch in r.chunks for n in ch.notes)
    # "16030100 040E: 0E => Server_hello_done" (the context id was split among the groups).
    done = messages(r, "ServerHelloDone")[0]
    assert done.length == 0 and not done.problems
    # "10 => client_key_exchange" with a 128-byte encrypted premaster: a 1024-bit RSA key.
    cke = messages(r, "ClientKeyExchange")[0]
    assert cke.direction == "client" and any("1024-bit" in d for d in cke.details)
    assert messages(r, "CertificateVerify")[0].length == 0x82
    # "14030100 0101: change_cipher_specs", then the encrypted Finished (0x30 bytes).
    kinds = [it.kind for it in r.items]
    i = kinds.index("change_cipher_spec")
    assert kinds[i + 1] == "encrypted_handshake" and r.items[i + 1].length == 0x30
    assert "application_data" in kinds  # "17: Application Data"


def test_cft_simple_authentication_trace() -> None:
    r = seed("cft_simple_auth.txt")
    as_json(r)
    assert not messages(r, "CertificateRequest")  # "server authentication only"
    hello = messages(r, "ClientHello")[0]
    assert codes(hello) == ["0x002F", "0x000A", "0x0009", "0x0001", "0x0002"]
    assert hello.direction == "client" and not hello.missing
    # CIPHER = 47; the server side's dump of its ServerHello stops inside the random.
    chosen = [sh.cipher_suite.code for sh in messages(r, "ServerHello") if sh.cipher_suite]
    assert chosen == ["0x002F"]
    assert any("stops in random" in p for sh in messages(r, "ServerHello") for p in sh.problems)
    # "16030100 3043: Finished" had a stray "0C" from the ASCII column among its groups.
    assert any("dropped '0C'" in n for ch in r.chunks for n in ch.notes)
    finished = [it for it in r.items if it.kind == "encrypted_handshake"]
    assert len(finished) == 4 and all(it.length == 0x30 for it in finished)
    assert sum(1 for it in finished if not it.missing) == 3  # one dump stops after 2 lines


def test_cft_alert_when_the_pki_password_is_wrong() -> None:
    r = seed("cft_alert.txt")
    as_json(r)
    (alert,) = r.items
    assert alert.alert is not None
    assert (alert.alert.level_name, alert.alert.name, alert.alert.code) == (
        "fatal",
        "decrypt_error",
        51,
    )
    assert r.chunks[0].announced == 7 and r.chunks[0].direction == "sent"  # "7 SENDING ... ALERT"


def test_whole_seed_files_decode_without_tracebacks() -> None:
    # The excerpts kept in the repository always; the whole source documents too when the
    # checkout sits beside them (a developer's tree), never a skip.
    paths = sorted((Path(__file__).parent / "data" / "seeds").glob("*.txt"))
    assert paths
    shared = Path(__file__).resolve().parents[2] / "shared" / "seeds"
    paths += sorted(shared.glob("*.txt")) if shared.is_dir() else []
    for path in paths:
        text = path.read_text(errors="replace")
        try:
            r = decode_text(text)
        except DecodeError:
            continue  # seeds without hex dumps
        as_json(r)
        render_decode(r)


# --- other dump styles ------------------------------------------------------------------------

SERVER_HELLO = build_server_hello(cipher_suite=0xC02F, version=0x0303, random=bytes(range(32)))
RECORD = build_records(22, 0x0303, SERVER_HELLO)


def _xxd(data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        groups = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:08x}: {groups:<39}  {text}")
    return "\n".join(lines)


def _wireshark(data: bytes) -> str:
    lines = []
    for off in range(0, len(data), 16):
        chunk = data[off : off + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{off:04x}  {left:<23}  {right:<23}   {text}")
    return "\n".join(lines)


@pytest.mark.parametrize(
    "text",
    [
        RECORD.hex(),
        " ".join(f"0x{b:02X}," for b in RECORD),
        ":".join(f"{b:02x}" for b in RECORD),
        _xxd(RECORD),
        "\n".join(f"    {RECORD[i : i + 16].hex(' ')}" for i in range(0, len(RECORD), 16)),
    ],
    ids=["plain", "0x-commas", "colons", "xxd", "indented"],
)
def test_dump_styles(text: str) -> None:
    r = decode_text(text)
    as_json(r)
    (sh,) = messages(r, "ServerHello")
    assert sh.cipher_suite is not None and sh.cipher_suite.code == "0xC02F"
    assert sh.random == bytes(range(32)).hex() and not sh.problems


def test_wireshark_frame_skips_link_ip_and_tcp_headers() -> None:
    ethernet = bytes.fromhex("0c112233445566778899aabb0800")
    ip = (
        bytes.fromhex("4500")
        + (20 + 20 + len(RECORD)).to_bytes(2, "big")
        + bytes.fromhex("1c464000400600007f0000017f000001")
    )
    tcp = bytes.fromhex("03e4c2a811223344556677885018ffff00000000")
    frame = ethernet + ip + tcp + RECORD
    r = decode_text(_wireshark(frame))
    assert r.items[0].kind == "skipped" and r.items[0].length == 54
    assert messages(r, "ServerHello")[0].cipher_suite is not None


def test_message_spanning_records_and_a_truncated_certificate(pki: TestPKI) -> None:
    chain = [
        x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
        for pem in _pems(pki.good.chain.read_bytes())
    ]
    msg = build_certificate(tuple(chain))
    records = build_records(22, 0x0303, msg, max_fragment=100)  # one message, many records
    r = decode_bytes(records)
    (cert,) = messages(r, "Certificate")
    assert len(cert.records) > 5 and not cert.missing and not cert.problems
    leaf = x509.load_der_x509_certificate(chain[0])
    assert cert.certificates[0].subject == leaf.subject.rfc4514_string()
    assert cert.certificates[0].sha256 == leaf.fingerprint(hashes.SHA256()).hex()
    assert cert.certificates[0].not_after is not None
    assert len(cert.certificates) == len(chain)
    # Cut inside the leaf: the bytes missing are counted, the names present still shown.
    cut = decode_bytes(build_records(22, 0x0303, msg)[:400])
    (part,) = messages(cut, "Certificate")
    c = part.certificates[0]
    assert c.missing == len(chain[0]) - c.present and c.missing > 0
    assert c.subject == leaf.subject.rfc4514_string() and c.sha256 is None
    assert part.missing == len(msg) - 4 - part.present


def _pems(data: bytes) -> list[bytes]:
    marker = b"-----END CERTIFICATE-----"
    return [p + marker for p in data.split(marker) if b"BEGIN CERTIFICATE" in p]


def test_alerts_sslv2_and_garbage() -> None:
    alert = decode_text("15 03 03 00 02 02 46")
    assert alert.items[0].alert is not None and alert.items[0].alert.name == "protocol_version"
    v2 = decode_text("80 31 01 00 02 00 18 00 00 00 10 07 00 c0 05 00 80 03 00 80 01 00 80 "
                     "06 00 40 04 00 80 02 00 80 00 00 0a " + "11" * 16)  # fmt: skip
    (hello,) = v2.items
    assert hello.kind == "sslv2_client_hello" and "0x000A" in codes(hello)
    junk = decode_text("48 54 54 50 2f 31 2e 31 20 32 30 30 20 4f 4b")  # "HTTP/1.1 200 OK"
    assert [it.kind for it in junk.items] == ["unknown"]


def test_no_hex_is_the_one_error() -> None:
    for text in ("", "hello world", "{}", '{"trace": []}', "deadbeef words only"):
        with pytest.raises(DecodeError):
            read_dump(text)


# --- never a traceback ------------------------------------------------------------------------

_DUMPISH = st.lists(
    st.sampled_from(
        [
            "CFTY02Z>> CTX = 200003 ",
            "CTX ndata = 200003 () 9 _ RECEIVED ",
            "00000000: ",
            "0010  ",
            ">>> TLS 1.2, Handshake [length 0005] ",
            "──> ClientHello ",
            "16030100",
            "35010000",
            "0B000523",
            " ",
            "\n",
            ">",
            "<",
            '"',
            "0x",
            ":",
            "200 003",
            "ff",
            "0",
            "... (12 bytes shown in JSON)",
            "{",
            "}",
            '"trace"',
            "[",
        ]
    )
    | st.text(max_size=12),
    max_size=60,
).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=400), _DUMPISH))
def test_any_text_gives_a_result_or_decode_error(text: str) -> None:
    try:
        r = decode_text(text)
    except DecodeError:
        return
    render_decode(r)
    json.dumps(to_jsonable(r))


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=600))
def test_any_bytes_decode(data: bytes) -> None:
    r = decode_bytes(data)
    render_decode(r)
    assert sum(it.present for it in r.items) <= len(data) + 5 * len(r.items)


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(min_value=0, max_value=len(RECORD)), flip=st.integers(0, 255))
def test_cut_and_damaged_records_decode(cut: int, flip: int) -> None:
    damaged = bytearray(RECORD[:cut])
    if damaged:
        damaged[flip % len(damaged)] ^= 0xA5
    for data in (RECORD[:cut], bytes(damaged)):
        r = decode_bytes(data)
        as_json(r)


# --- the real CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in SEEDS.glob("*.txt")))
def test_cli_decodes_every_seed_excerpt(name: str) -> None:
    proc = tlsprobe("decode", SEEDS / name, "--json")
    assert proc.returncode == 0, proc.stderr
    validator().validate(json.loads(proc.stdout))
    human = tlsprobe("decode", SEEDS / name)
    assert human.returncode == 0 and "Traceback" not in human.stdout + human.stderr


def test_cli_reads_stdin_and_arguments() -> None:
    text = (SEEDS / "zos_server_hello.txt").read_text()
    proc = tlsprobe("decode", "-", stdin=text)
    assert proc.returncode == 0 and "TLS_RSA_WITH_3DES_EDE_CBC_SHA" in proc.stdout
    assert "renegotiation_info" in proc.stdout and "<── ServerHello" in proc.stdout
    proc = tlsprobe("decode", "--json", stdin=text)  # no argument: stdin
    assert json.loads(proc.stdout)["items"][0]["cipher_suite"]["code"] == "0x000A"
    proc = tlsprobe("decode", *RECORD.hex(" ").split())  # hex spread over arguments
    assert proc.returncode == 0 and "ServerHello" in proc.stdout


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        (["no-such-dump.txt"], None, "no such file"),
        ([str(SEEDS)], None, "directory"),
        ([], "nothing that looks like a dump", "no hex"),
        (["-"], "", "no hex"),
    ],
    ids=["missing-file", "directory", "no-hex", "empty-stdin"],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    args: list[str], stdin: str | None, words: str
) -> None:
    proc = tlsprobe("decode", *args, stdin=stdin)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and words in lines[0], proc.stderr


# --- a real handshake from the lab, round-tripped -----------------------------------------------


@pytest.fixture(scope="module")
def lab_good(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    pki = tmp_path_factory.mktemp("decode-lab-pki")
    proc = subprocess.Popen(
        [sys.executable, "-m", "probe", "lab", "--json", "--port-base", "0", "--pki-dir", str(pki),
         "good"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        pytest.fail(f"lab did not start: {proc.stderr.read() if proc.stderr else ''}")
    try:
        yield json.loads(line)["scenarios"][0]["port"], pki / "ca.crt"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


@pytest.mark.parametrize("tls_max", ["1.2", "1.3"])
def test_decode_round_trips_a_probe_trace(
    lab_good: tuple[int, Path], tls_max: str, tmp_path: Path
) -> None:
    port, ca = lab_good
    probed = tlsprobe(
        "probe", f"127.0.0.1:{port}", "--ca", ca, "--trace", "--json", "--tls-max", tls_max
    )
    assert probed.returncode == 0, probed.stdout + probed.stderr
    result = json.loads(probed.stdout)
    trace = tmp_path / "trace.json"
    trace.write_text(probed.stdout)
    proc = tlsprobe("decode", trace, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    validator().validate(doc)
    items = {it["name"]: it for it in doc["items"]}
    neg = result["negotiated"]
    sh = items["ServerHello"]
    assert sh["selected_version"] == neg["version"]
    assert sh["cipher_suite"]["code"] == neg["cipher"]["code"]
    assert sh["cipher_suite"]["iana"] == neg["cipher"]["iana"]
    sent = next(e for e in result["trace"] if e["what"] == "ClientHello")
    ch = items["ClientHello"]
    assert ch["direction"] == "client" and not ch["problems"]
    assert bytes.fromhex(ch["hex"]) == bytes.fromhex(sent["hex"])
    assert "TLSv1.2" in ch["supported_versions"] or ch["version"] == "TLSv1.2"
    if tls_max == "1.2":  # TLS 1.3 encrypts the certificates; 1.2 shows them in clear
        certs = items["Certificate"]["certificates"]
        assert [c["sha256"] for c in certs] == [c["sha256"] for c in result["server_certificates"]]
        assert [c["subject"] for c in certs] == [
            c["subject"] for c in result["server_certificates"]
        ]
    # The hex of the trace entries, fed back as plain hex, gives the same messages.
    hexes = [e["hex"] for e in result["trace"] if e["what"] in ("ClientHello", "ServerHello")]
    plain = tlsprobe("decode", "--json", stdin="\n".join(hexes))
    again = [it["name"] for it in json.loads(plain.stdout)["items"]]
    assert again == ["ClientHello", "ServerHello"]


def test_decode_reads_openssl_s_client_msg(lab_good: tuple[int, Path]) -> None:
    port, ca = lab_good
    proc = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-msg", "-tls1_2", "-CAfile",
         str(ca)],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    r = decode_text(proc.stdout)
    as_json(r)
    assert r.styles == ("msg",)
    names = [it.name for it in r.items if it.kind == "handshake"]
    assert names[:5] == [
        "ClientHello", "ServerHello", "Certificate", "ServerKeyExchange", "ServerHelloDone",
    ]  # fmt: skip
    assert all(it.direction == "server" for it in messages(r, "Certificate"))
    assert len(messages(r, "Certificate")[0].certificates) == 2
