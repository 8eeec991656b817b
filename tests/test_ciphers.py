"""The cipher-suite reference and every spelling `--ciphers` accepts.

Round trips go through the real command (`tlsprobe ciphers`, in-process with typer's runner, and
once as a process) so the names a user reads are the names the parser takes back. The last tests
offer vendor spellings to a real ``openssl s_server``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from peers import Peer
from probing import probe_port, schema
from typer.testing import CliRunner

from probe import ciphers
from probe.cipherlist import parse_cipher_list, parse_cipher_selection
from probe.cli import app
from probe.errors import InputError
from probe.pki import TestPKI
from probe.wire import registry

RUNNER = CliRunner()


def ciphers_schema() -> dict[str, Any]:
    return schema("ciphers")


def ciphers_json(*args: str) -> dict[str, Any]:
    result = RUNNER.invoke(app, ["ciphers", *args, "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    doc: dict[str, Any] = json.loads(result.output)
    jsonschema.validate(doc, ciphers_schema())
    return doc


def codes(text: str) -> list[int]:
    return [s.code for s in parse_cipher_list(text)]


# -- the reference itself ---------------------------------------------------------------------


def test_every_iana_suite_has_a_row_with_its_openssl_name() -> None:
    ref = ciphers.reference()
    for s in registry.all_suites():
        row = ref.by_code[s.code]
        assert row.iana_assigned and row.suite.iana == s.iana and row.suite.openssl == s.openssl
    extra = [r for r in ref.rows if not r.iana_assigned]
    assert {r.suite.hex for r in extra} == {"0x0062", "0x0064", "0xFEFE", "0xFEFF"}
    assert len(ref.rows) == len(registry.all_suites()) + len(extra)


def test_mq_names_are_bound_to_their_protocol_version() -> None:
    # vendor-codes.md §1b: one codepoint, different MQ names per protocol version.
    assert [m.name for m in ciphers.mq_names(0x000A, 0x0300)] == ["TRIPLE_DES_SHA_US"]
    assert [m.name for m in ciphers.mq_names(0x000A, 0x0301)] == ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"]
    assert [m.name for m in ciphers.mq_names(0x0005, 0x0303)] == ["TLS_RSA_WITH_RC4_128_SHA256"]
    assert [m.name for m in ciphers.mq_names(0x0005, 0x0300)] == ["RC4_SHA_US"]
    assert [m.name for m in ciphers.mq_names(0x002F, 0x0300)] == ["AES_SHA_US"]
    assert ciphers.mq_names(0xC02F, 0x0304) == ()


def test_confidence_tags_are_kept_and_shown() -> None:
    doc = ciphers_json("0xCCA8")
    (mq,) = doc["suites"][0]["mq"]
    assert mq["name"] == "ECDHE_RSA_CHACHA20_POLY1305_SHA256" and mq["confidence"] == "U"
    human = RUNNER.invoke(app, ["ciphers", "0xCCA8"]).output
    assert "ECDHE_RSA_CHACHA20_POLY1305_SHA256 (TLS 1.2) [U]" in human
    assert ciphers_json("0x003B")["suites"][0]["mq"][0]["confidence"] == "K"
    # Rule-derived vendor codes are labelled as such, documented ones are not.
    row = ciphers_json("0xC02F")["suites"][0]
    assert row["gskit"]["long"] == {"value": "C02F", "confidence": "C", "note": None}
    assert row["cft"]["value"] == "49199" and row["cft"]["confidence"] == "C"
    row = ciphers_json("0xC02B")["suites"][0]
    assert row["gskit"]["long"]["confidence"] == "inferred"
    assert row["cft"] == {"value": "49195", "confidence": "inferred", "note": None}
    assert ciphers_json("0x1301")["suites"][0]["cft"]["confidence"] == "inferred"
    assert "C02B*" in RUNNER.invoke(app, ["ciphers", "0xC02B"]).output


def test_whole_table_and_aliases() -> None:
    doc = ciphers_json()
    assert doc["query"] is None and doc["match"] == "all"
    assert len(doc["suites"]) == len(ciphers.reference().rows)
    assert {a["name"] for a in doc["aliases"]} == {
        "ANY", "ANY_TLS12", "ANY_TLS12_OR_HIGHER", "ANY_TLS13", "ANY_TLS13_OR_HIGHER",
    }  # fmt: skip
    any13 = next(a for a in doc["aliases"] if a["name"] == "ANY_TLS13")
    assert any13["versions"] == ["TLSv1.3"] and any13["kind"] == "fixed"
    assert any13["suites"] == ["0x1303", "0x1302", "0x1301", "0x1304", "0x1305"]


# -- round trips: name -> code -> the same name listed ------------------------------------------


MQ_SPECS = sorted(ciphers.reference().mq_specs.values(), key=lambda m: m.name)


@pytest.mark.parametrize("spec", MQ_SPECS, ids=lambda m: m.name)
def test_every_mq_cipherspec_round_trips(spec: ciphers.MQCipherSpec) -> None:
    for query in (f"mq:{spec.name}", spec.name.lower()):
        (row,) = ciphers_json(query)["suites"]
        assert int(row["code"], 16) == spec.code
        assert {"name": spec.name, "protocol": spec.protocol_name} in [
            {"name": m["name"], "protocol": m["protocol"]} for m in row["mq"]
        ]
    # ... and from the code back to the name.
    (row,) = ciphers_json(f"0x{spec.code:04X}")["suites"]
    assert spec.name in [m["name"] for m in row["mq"]]


@pytest.mark.parametrize("alias", sorted(ciphers.reference().mq_aliases))
def test_every_mq_alias_round_trips(alias: str) -> None:
    doc = ciphers_json(f"mq:{alias}")
    (listed,) = doc["aliases"]
    assert listed["name"] == alias
    assert [r["code"] for r in doc["suites"]] == listed["suites"]
    for r in doc["suites"]:
        assert any(m["protocol"] in listed["versions"] for m in r["mq"])


def _documented_gskit() -> list[tuple[str, int]]:
    out = []
    for r in ciphers.reference().rows:
        for c in (r.gsk_short, r.gsk_long):
            if c is not None and not c.inferred:
                out.append((c.value, r.code))
    return out


@pytest.mark.parametrize(("code", "suite"), _documented_gskit(), ids=lambda x: str(x))
def test_every_gskit_code_round_trips(code: str, suite: int) -> None:
    (row,) = ciphers_json(f"gsk:{code}")["suites"]
    assert int(row["code"], 16) == suite
    listed = row["gskit"]["short" if len(code) == 2 else "long"]
    assert listed["value"] == code and listed["confidence"] == "C"


@pytest.mark.parametrize("number", ciphers.reference().cft_order)
def test_every_cft_ciphlist_number_round_trips(number: int) -> None:
    (row,) = ciphers_json(f"cft:{number}")["suites"]
    assert int(row["code"], 16) == number
    assert row["cft"]["value"] == str(number) and row["cft"]["confidence"] == "C"


def test_search_by_number_and_by_part_of_a_name() -> None:
    assert "0x002F" in [r["code"] for r in ciphers_json("47")["suites"]]  # CFT decimal 47
    doc = ciphers_json("AES_128_GCM")
    assert doc["match"] == "substring" and len(doc["suites"]) > 5
    assert all("AES_128_GCM" in r["name"] for r in doc["suites"])
    assert [r["code"] for r in ciphers_json("DES-CBC3-SHA")["suites"]] == ["0x000A"]


def test_ciphers_lists_a_partner_profiles_client_list_in_its_order() -> None:
    doc = ciphers_json("profile:cft-3.1")  # the same list --ciphers profile:cft-3.1 offers
    assert doc["match"] == "profile"
    assert [int(r["code"], 16) for r in doc["suites"]] == [0x002F, 0x000A, 0x0009, 0x0001, 0x0002]
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "ciphers", "profile:no-such-partner"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "no such partner profile" in proc.stderr, proc.stderr


def test_ciphers_unknown_query_is_exit_2_with_suggestions() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "ciphers", "mq:ANY_TLS2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    assert "did you mean mq:ANY_TLS12" in proc.stderr


# -- --ciphers accepts every form -----------------------------------------------------------------

MQ_ORDER_12 = [0x009D, 0xC02C, 0xC030, 0x003D, 0xC024, 0xC028, 0x009C, 0xC02B, 0xC02F, 0x003C,
               0xC023, 0xC027]  # fmt: skip
MQ_ORDER_13 = [0x1303, 0x1302, 0x1301, 0x1304, 0x1305]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gsk:0A", [0x000A]),
        ("gsk:0a", [0x000A]),
        ("gsk:C02F", [0xC02F]),
        ("cft:47", [0x002F]),
        ("cft:49199", [0xC02F]),
        ("mq:ECDHE_RSA_AES_128_GCM_SHA256", [0xC02F]),
        ("ECDHE_RSA_AES_128_GCM_SHA256", [0xC02F]),  # SSLCIPH value without the prefix
        ("mq:TRIPLE_DES_SHA_US", [0x000A]),
        ("mq:ANY_TLS12_OR_HIGHER", MQ_ORDER_13 + MQ_ORDER_12),
        ("mq:ANY_TLS12", MQ_ORDER_12),
        ("mq:ANY_TLS13", MQ_ORDER_13),
        ("mq:C02F", [0xC02F]),  # z/OS SSLCIPH hex form
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", [0xC02F]),
        ("ECDHE-RSA-AES128-GCM-SHA256", [0xC02F]),
        ("0xC02F", [0xC02F]),
        ("C02F", [0xC02F]),
        ("SSL_RSA_WITH_3DES_EDE_CBC_SHA", [0x000A]),
        ("mq:DES_SHA_EXPORT1024", [0x0062]),  # not an IANA codepoint
        ("profile:cft-3.1", [0x002F, 0x000A, 0x0009, 0x0001, 0x0002]),
        ("AES128-SHA:gsk:0A:cft:53,mq:ECDHE_RSA_AES_128_GCM_SHA256", [0x2F, 0x0A, 0x35, 0xC02F]),
        ("gsk:0A gsk:0A 0x000A", [0x000A]),  # duplicates dropped
    ],
)
def test_parse_cipher_list_accepts_every_form(text: str, expected: list[int]) -> None:
    assert codes(text) == expected


def test_mq_names_pin_their_protocol_versions() -> None:
    assert parse_cipher_selection("mq:ANY_TLS12").versions == (0x0303,)
    assert parse_cipher_selection("mq:TLS_RSA_WITH_AES_128_CBC_SHA").versions == (0x0301,)
    assert parse_cipher_selection("mq:ANY_TLS12_OR_HIGHER").versions == (0x0303, 0x0304)
    assert parse_cipher_selection("gsk:0A:cft:47").versions is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("gsk:ZZ", ["'gsk:ZZ'", "2 hex digits", "did you mean gsk:"]),
        ("gsk:123", ["'gsk:123'", "did you mean gsk:"]),
        ("mq:ANY_TLS2", ["not an IBM MQ CipherSpec", "mq:ANY_TLS12"]),
        ("mq:ECDHE_RSA_AES_128_GCM_SHA265", ["mq:ECDHE_RSA_AES_128_GCM_SHA256"]),
        ("cft:abc", ["decimal", "did you mean cft:"]),
        ("cft:99999", ["no known cipher suite", "did you mean cft:"]),
        ("ECDHE-RSA-AES128-GCM-SHA265", ["unknown cipher suite", "ECDHE-RSA-AES128-GCM-SHA256"]),
        ("0x0047", ["no known cipher suite"]),
        ("profile:no-such-partner", ["no such partner profile", "profile:"]),
    ],
)
def test_unknown_names_are_clear_errors(text: str, words: list[str]) -> None:
    with pytest.raises(InputError) as caught:
        parse_cipher_list(text)
    message = str(caught.value)
    assert message.startswith("--ciphers: ")
    for w in words:
        assert w in message, message


def test_probe_with_unknown_gskit_code_exits_2_with_a_suggestion() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "probe", "probe", "127.0.0.1:1", "--ciphers", "gsk:ZZ"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "gsk:ZZ" in lines[0] and "did you mean gsk:0A" in lines[0]


# -- vendor data is validated strictly ------------------------------------------------------------


def test_vendor_data_with_an_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    text = (ciphers.vendor_dir() / "mq.toml").read_text()
    bad = tmp_path / "mq.toml"
    bad.write_text(text.replace('platforms = "all"', 'platform = "all"', 1))
    with pytest.raises(ciphers.DataError) as caught:
        ciphers._load_mq(bad)
    assert str(bad) in str(caught.value) and "cipherspec[0].platform" in str(caught.value)
    bad.write_text(text.replace('code = "0x1301"', 'code = "1301"', 1))
    with pytest.raises(ciphers.DataError, match=r"cipherspec\[0\]\.code"):
        ciphers._load_mq(bad)


def test_cft_and_gskit_data_reject_unknown_keys(tmp_path: Path) -> None:
    cft = tmp_path / "cft.toml"
    cft.write_text((ciphers.vendor_dir() / "cft.toml").read_text() + "\nextra = 1\n")
    with pytest.raises(ciphers.DataError, match="extra: unknown key"):
        ciphers._load_cft(cft)
    gsk = tmp_path / "gskit.toml"
    gsk.write_text(
        (ciphers.vendor_dir() / "gskit.toml").read_text().replace("[[code]]", "[[codes]]")
    )
    with pytest.raises(ciphers.DataError, match="codes: unknown key"):
        ciphers._load_gskit(gsk)


# -- vendor spellings against a real peer -------------------------------------------------------


@pytest.mark.parametrize("openssl_peer", ["good"], indirect=True)
@pytest.mark.parametrize(
    ("ciphers_text", "version", "code"),
    [
        ("mq:ECDHE_RSA_AES_128_GCM_SHA256", "TLSv1.2", "0xC02F"),
        ("gsk:C030", "TLSv1.2", "0xC030"),
        ("cft:49199", "TLSv1.2", "0xC02F"),
        ("mq:TLS_AES_256_GCM_SHA384", "TLSv1.3", "0x1302"),
        ("mq:ANY_TLS12", "TLSv1.2", None),
    ],
)
async def test_vendor_spellings_negotiate_with_openssl(
    openssl_peer: Peer, pki: TestPKI, ciphers_text: str, version: str, code: str | None
) -> None:
    result = await probe_port(openssl_peer.port, ca=pki.ca, ciphers=ciphers_text)
    assert result.outcome == "connected", result.diagnosis
    assert result.negotiated is not None and result.negotiated.cipher is not None
    assert result.negotiated.version == version
    if code is not None:
        assert result.negotiated.cipher.code == code
    else:
        # An alias offers the queue manager's TLS 1.2 list; OpenSSL picks one of them.
        assert int(result.negotiated.cipher.code, 16) in MQ_ORDER_12


def test_the_inferred_mark_uses_the_references_own_word() -> None:
    # cli_partners spells the label out so `tlsprobe explain` and friends need not load the
    # cipher reference at start-up; the two must not drift apart.
    from probe import ciphers, cli_partners

    assert ciphers.INFERRED in cli_partners._MARK
    assert cli_partners._MARK[ciphers.INFERRED] == "*"
