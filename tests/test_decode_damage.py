"""`tlsprobe decode` on input that is damaged, cut, empty or not a hex dump at all: the bytes a
dump does not give are never guessed, and input that is not hex is named for what it is.

The OCR damage comes from the seed excerpt tests/data/seeds/zos_certificates.txt (verbatim
from ../shared/seeds/003, whose lines 228, 241 and 340 are its lines 7, 20 and 72).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from test_decode import as_json, seed, tlsprobe

from probe.decode import DecodeResult, Item, decode_bytes, decode_text
from probe.hexdump import read_dump
from probe.pki import TestPKI
from probe.render import render_decode
from probe.wire.errors import DecodeError
from probe.wire.messages import build_server_hello
from probe.wire.record import build_records

# --- a hex group that lost a digit --------------------------------------------------------------


def _after(r: DecodeResult, it: Item) -> list[Item]:
    return list(r.items[r.items.index(it) + 1 :])


def test_odd_group_is_unknown_bytes_not_a_guess() -> None:
    r = seed("zos_certificates.txt")
    as_json(r)
    # Line 7: "30820275 308201DE A030201 02020100" (real A0030201). The certificate is read up
    # to the damaged group and says so; nothing is read from a padded "0A030201".
    first = next(it for it in r.items if it.kind == "certificate")
    assert first.hex == "30820275308201de" and (first.present, first.missing) == (8, 625)
    stop = "the dump is damaged here (group 'A030201' on line 7 has 7 digits)"
    assert any(p.startswith(stop) for p in first.problems)
    assert not any("unexpected tag" in p for it in r.items for p in it.problems)
    assert all("0a030201" not in it.hex and "00692a86" not in it.hex for it in r.items)
    # The 4 bytes the group stood for: an item of their own, counted, shown as "??".
    unknown, rest = _after(r, first)[:2]
    assert (unknown.kind, unknown.name) == ("unknown", stop)
    assert (unknown.length, unknown.present, unknown.missing, unknown.hex) == (4, 0, 4, "")
    assert unknown.details[0].startswith("????????")
    # The bytes after it are shown as they are, at their right offset, without a structure.
    assert rest.kind == "continuation" and rest.hex.startswith("02020100")
    chunk = r.chunks[rest.chunk]
    assert chunk.start_offset == 12 and chunk.bytes == 0x50 - 12


def test_damage_inside_a_message_keeps_what_comes_before() -> None:
    r = seed("zos_certificates.txt")
    # Line 20 "0106300D 0692A86": the Certificate message and its certificate are read up to
    # the damage (the serial is there, the issuer after it is not read).
    (msg,) = [it for it in r.items if it.name == "Certificate"]
    assert msg.present == 24 and msg.certificates[0].serial == "06"
    assert msg.certificates[0].issuer is None
    assert any("group '0692A86' on line 20 has 7 digits" in p for p in msg.problems)
    # Line 72 "0B00523 00052000": damaged in its first group, so no message is made up.
    unknown = [it for it in r.items if "'0B00523'" in it.name]
    assert len(unknown) == 1 and unknown[0].missing == 4
    assert not [it for it in r.items if it.name.startswith("unrecognised")]


def test_rendered_hex_marks_the_unknown_bytes() -> None:
    text = render_decode(seed("zos_certificates.txt"))
    assert "30820275 308201de\n" in text and "0a030201" not in text
    assert "????????  (4 byte(s) of unknown value, printed as 'A030201'" in text


CFT = """\
CFTY02Z>> CTX = 200003 SSLact () _ 58 HANDSHAKE SENDING DATA
CFTY02Z>> CTX = 200003 16030100 35010000 3103015A 4B3C2D1 >...5...1..ZK<
CFTY02Z>> CTX = 200003 00112233 44556677 8899AABB CCDDEEFF >................<
"""


def test_transfer_cft_and_plain_lines_treat_a_lost_digit_alike() -> None:
    r = decode_text(CFT)
    as_json(r)
    (hello,) = [it for it in r.items if it.name == "ClientHello"]
    assert hello.hex == "0100003103015a" and hello.missing
    assert any("group '4B3C2D1' on line 2 has 7 digits" in p for p in hello.problems)
    after = r.items[-1]
    assert after.kind == "continuation" and after.hex == "00112233445566778899aabbccddeeff"
    # Plain hex in groups: the same; a split short group in CFT (seed 004's "020 233") is not.
    plain = decode_text("16030100 2A02000 26 0303")
    assert plain.items[0].hex == "16030100"
    assert plain.items[1].name.endswith("(group '2A02000' on line 1 has 7 digits)")
    alert = seed("cft_alert.txt")
    assert [it.name for it in alert.items] == ["Alert fatal decrypt_error(51)"]


# --- a dump cut with an ellipsis ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "16030100 2A020000 26...",  # the README's example
        "16 03 01 00 2a 02 00 00 26 …",
        "16030100 2A020000 26 [...]",
        "160301002A02000026 ... (truncated)",
    ],
)
def test_trailing_ellipsis_decodes_the_hex_before_it(text: str) -> None:
    r = decode_text(text)
    as_json(r)
    (sh,) = r.items
    assert sh.name == "ServerHello" and sh.records[0].length == 42
    assert (sh.length, sh.present, sh.missing) == (38, 0, 38)
    assert any("ends with" in n and "leaves out" in n for n in r.chunks[0].notes)


def test_bytes_after_an_ellipsis_are_not_joined_to_the_bytes_before() -> None:
    r = decode_text("16 03 01 00 2a 02 00 00 26 03 02 ...\n15 03 01 00 02 02 28")
    assert len(r.chunks) == 2 and r.items[1].name == "Alert fatal handshake_failure(40)"
    with pytest.raises(DecodeError):
        read_dump("...")


def test_cli_readme_example() -> None:
    proc = tlsprobe("decode", "-", stdin="16030100 2A020000 26...\n")
    assert proc.returncode == 0, proc.stderr
    assert "ServerHello  (38 bytes missing)" in proc.stdout


# --- empty input, binary input, PEM ----------------------------------------------------------


def test_empty_input_says_so() -> None:
    for text in ("", "  \n\t\n"):
        with pytest.raises(DecodeError, match="the input is empty"):
            decode_text(text)
    proc = tlsprobe("decode", "-", stdin="")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "the input is empty" in proc.stderr


def test_cli_empty_argument_says_the_input_is_empty() -> None:
    proc = tlsprobe("decode", "")
    assert proc.returncode == 2 and "the input is empty" in proc.stderr, proc.stderr


def test_binary_input_is_labelled_raw_bytes(tmp_path: Path) -> None:
    record = build_records(22, 0x0303, build_server_hello(cipher_suite=0xC02F, version=0x0303))
    r = decode_bytes(record)
    as_json(r)
    assert r.chunks[0].label is not None and "raw bytes (binary input" in r.chunks[0].label
    path = tmp_path / "capture.bin"
    path.write_bytes(record)
    proc = tlsprobe("decode", path)
    assert proc.returncode == 0 and "raw bytes (binary input" in proc.stdout
    assert "ServerHello" in proc.stdout


def test_pem_certificate_is_decoded(pki: TestPKI) -> None:
    leaf = x509.load_pem_x509_certificate(pki.good.cert.read_bytes())
    r = decode_text(pki.good.cert.read_text())
    as_json(r)
    (it,) = r.items
    (c,) = it.certificates
    assert it.kind == "certificate" and not it.missing
    assert c.subject == leaf.subject.rfc4514_string()
    assert c.issuer == leaf.issuer.rfc4514_string()
    assert c.not_after == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert r.chunks[0].label == "PEM CERTIFICATE (base64 DER)"
    proc = tlsprobe("decode", pki.good.chain)
    assert proc.returncode == 0 and proc.stdout.count("X.509 certificate") >= 2


def test_pem_without_a_certificate_is_one_clear_error(pki: TestPKI) -> None:
    proc = tlsprobe("decode", pki.good.key)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "the input is PEM (" in lines[0] and "PEM certificates" in lines[0]
    # A key next to a certificate is named, never shown.
    r = decode_text(pki.good.key.read_text() + pki.good.cert.read_text())
    assert any("PRIVATE KEY block (not a certificate) is skipped" in n for n in r.notes)
    body = "".join(pki.good.key.read_text().splitlines()[1:-1])
    assert body[:40] not in render_decode(r)


def test_pem_beside_a_hex_dump_is_left_to_the_dump(pki: TestPKI) -> None:
    text = "15 03 03 00 02 02 28\n" + pki.good.cert.read_text()
    r = decode_text(text)
    assert [it.kind for it in r.items] == ["alert"]
    assert any("PEM block(s) (line 2) not decoded" in n for n in r.notes)
