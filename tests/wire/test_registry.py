"""The codec registries: known facts, agreement with the local OpenSSL, and lookup forms."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from probe.paths import profiles_dir
from probe.wire import registry as reg

ROOT = Path(__file__).resolve().parents[2]

OPENSSL_PROTOCOL = {"SSLv3": 0x0300, "TLSv1": 0x0301, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_OPENSSL_LINE = re.compile(r"^\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+(\S+)\s+Kx=")


def local_openssl_suites() -> list[tuple[int, str, str]]:
    """(code, name, protocol) for every suite `openssl ciphers -V` prints here."""
    if shutil.which("openssl") is None:
        pytest.fail("no openssl binary: scripts/bootstrap installs it", pytrace=False)
    out = subprocess.run(
        ["openssl", "ciphers", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        m = _OPENSSL_LINE.match(line)
        if m:
            rows.append((int(m.group(1) + m.group(2), 16), m.group(3), m.group(4)))
    assert rows, out
    return rows


# -- cipher suites ---------------------------------------------------------------------------


def test_ecdhe_rsa_aes128_gcm() -> None:
    s = reg.suite(0xC02F)
    assert s is not None
    assert s.iana == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert s.openssl == "ECDHE-RSA-AES128-GCM-SHA256"
    assert (s.kx, s.auth, s.cipher, s.mac) == ("ECDHE", "RSA", "AES_128_GCM", "AEAD")
    assert s.bits == 128
    assert s.min_version == 0x0303
    assert not (s.export or s.tls13 or s.scsv)
    assert s.hex == "0xC02F"
    assert reg.is_weak(s) == []


def test_rsa_3des() -> None:
    s = reg.suite(0x000A)
    assert s is not None
    assert s.iana == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    assert s.openssl == "DES-CBC3-SHA"
    assert (s.kx, s.auth, s.cipher, s.mac) == ("RSA", "RSA", "3DES_EDE_CBC", "SHA")
    assert s.bits == 112
    assert s.min_version == 0x0300
    assert s.hex == "0x000A"
    assert reg.is_weak(s) == ["3DES"]


def test_export_suite() -> None:
    s = reg.suite(0x0003)
    assert s is not None
    assert s.iana == "TLS_RSA_EXPORT_WITH_RC4_40_MD5"
    assert s.openssl == "EXP-RC4-MD5"
    assert s.export and s.bits == 40 and s.cipher == "RC4_40"
    assert reg.is_weak(s) == ["EXPORT", "RC4", "MD5"]


def test_tls13_suite() -> None:
    s = reg.suite(0x1301)
    assert s is not None
    assert s.iana == s.openssl == "TLS_AES_128_GCM_SHA256"
    assert s.tls13 and s.min_version == 0x0304
    assert (s.kx, s.auth, s.mac) == ("any", "any", "AEAD")
    assert [x.code for x in reg.all_suites() if 0x1301 <= x.code <= 0x1305 and x.tls13] == [
        0x1301,
        0x1302,
        0x1303,
        0x1304,
        0x1305,
    ]


@pytest.mark.parametrize(
    ("code", "name"), [(0x00FF, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"), (0x5600, "TLS_FALLBACK_SCSV")]
)
def test_scsv(code: int, name: str) -> None:
    s = reg.suite(code)
    assert s is not None
    assert s.iana == name and s.scsv and s.openssl is None
    assert reg.is_weak(s) == []


@pytest.mark.parametrize(
    ("code", "openssl", "kx", "auth", "cipher", "bits", "min_version"),
    [
        (0x0016, "DHE-RSA-DES-CBC3-SHA", "DHE", "RSA", "3DES_EDE_CBC", 112, 0x0300),
        (0x0034, "ADH-AES128-SHA", "DH", "anon", "AES_128_CBC", 128, 0x0300),
        (0x0001, "NULL-MD5", "RSA", "RSA", "NULL", 0, 0x0300),
        (0x0009, "DES-CBC-SHA", "RSA", "RSA", "DES_CBC", 56, 0x0300),
        (0x0026, "EXP-KRB5-DES-CBC-SHA", "KRB5", "KRB5", "DES_CBC_40", 40, 0x0300),
        (0x00AE, "PSK-AES128-CBC-SHA256", "PSK", "PSK", "AES_128_CBC", 128, 0x0301),
        (0xC013, "ECDHE-RSA-AES128-SHA", "ECDHE", "RSA", "AES_128_CBC", 128, 0x0301),
        (0xC0AA, "DHE-PSK-AES128-CCM8", "DHE_PSK", "PSK", "AES_128_CCM_8", 128, 0x0303),
        (0xCCA8, "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE", "RSA", "CHACHA20_POLY1305", 256, 0x0303),
        (0xC0B0, None, "ECCPWD", "ECCPWD", "AES_128_GCM", 128, 0x0303),
        (
            0xC100,
            "GOST2012-KUZNYECHIK-KUZNYECHIKOMAC",
            "GOSTR341112_256",
            "GOSTR341112_256",
            "KUZNYECHIK_CTR",
            256,
            0x0303,
        ),
    ],
)
def test_spot_checks(
    code: int, openssl: str | None, kx: str, auth: str, cipher: str, bits: int, min_version: int
) -> None:
    s = reg.suite(code)
    assert s is not None
    assert (s.openssl, s.kx, s.auth, s.cipher, s.bits, s.min_version) == (
        openssl,
        kx,
        auth,
        cipher,
        bits,
        min_version,
    )


def test_families_present() -> None:
    names = [s.iana for s in reg.all_suites()]
    for family in (
        "GOSTR341112",
        "ARIA",
        "CAMELLIA",
        "_CCM",
        "ECCPWD",
        "PSK",
        "KRB5",
        "EXPORT",
        "NULL",
        "anon",
        "CHACHA20",
        "SEED",
        "IDEA",
        "SRP",
        "SM4",
    ):
        assert any(family in n for n in names), family


def test_count_order_and_unique_codes() -> None:
    suites = reg.all_suites()
    assert len(suites) >= 330
    codes = [s.code for s in suites]
    assert codes == sorted(codes)
    assert len(set(codes)) == len(codes)
    assert all(0 <= c <= 0xFFFF for c in codes)


def test_no_reserved_or_unassigned_codes() -> None:
    codes = {s.code for s in reg.all_suites()}
    # GREASE (RFC 8701), the SSLv3-conflict and private-use ranges are not suites.
    assert not codes & {0x0A0A, 0x1A1A, 0xFAFA, 0x001C, 0x001D, 0x0047, 0x0060, 0x1300, 0xD004}
    assert not any(c >> 8 == 0xFF for c in codes)
    assert all(s.iana.startswith("TLS_") for s in reg.all_suites())


def test_unique_names() -> None:
    iana = [s.iana for s in reg.all_suites()]
    openssl = [s.openssl for s in reg.all_suites() if s.openssl]
    assert len(set(iana)) == len(iana)
    assert len({n.upper() for n in openssl}) == len(openssl)


def test_fields_are_consistent() -> None:
    for s in reg.all_suites():
        assert s.tls13 == (s.min_version == 0x0304), s
        if s.mac == "AEAD" and not s.tls13:
            assert s.min_version == 0x0303, s
        if s.export:
            assert s.bits == 40, s
        if s.cipher == "NULL":
            assert s.bits == 0, s


def test_every_local_openssl_name_maps_to_its_code() -> None:
    for code, name, _protocol in local_openssl_suites():
        s = reg.find_suite(name)
        assert s is not None, name
        assert s.code == code, (name, s)


def test_min_version_matches_local_openssl() -> None:
    for code, name, protocol in local_openssl_suites():
        s = reg.suite(code)
        assert s is not None, name
        assert s.min_version == OPENSSL_PROTOCOL[protocol], (name, protocol, s.min_version)


@pytest.mark.parametrize(
    "text",
    [
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "tls_ecdhe_rsa_with_aes_128_gcm_sha256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ecdhe-rsa-aes128-gcm-sha256",
        "  ECDHE-RSA-AES128-GCM-SHA256 ",
        "0xC02F",
        "0xc02f",
        "C02F",
        "c02f",
        "0xC0,0x2F",
    ],
)
def test_find_suite_forms(text: str) -> None:
    s = reg.find_suite(text)
    assert s is not None and s.code == 0xC02F


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("EDH-RSA-DES-CBC3-SHA", 0x0016),
        ("DHE-RSA-DES-CBC3-SHA", 0x0016),
        ("EXP-RC4-MD5", 0x0003),
        ("ADH-AES128-SHA", 0x0034),
        ("NULL-MD5", 0x0001),
        ("SSL_RSA_WITH_3DES_EDE_CBC_SHA", 0x000A),
        ("TLS_AES_128_GCM_SHA256", 0x1301),
        ("TLS_FALLBACK_SCSV", 0x5600),
    ],
)
def test_find_suite_legacy_and_alias_names(text: str, code: int) -> None:
    s = reg.find_suite(text)
    assert s is not None and s.code == code


@pytest.mark.parametrize("text", ["", "NOPE", "0x1234", "0x0A0A", "0xC02F0", "TLS_"])
def test_find_suite_unknown(text: str) -> None:
    assert reg.find_suite(text) is None


def test_unknown_suite_stays_a_number() -> None:
    assert reg.suite(0x1234) is None
    assert reg.describe_unknown("suite", 0x1234) == "unknown suite 0x1234"


@pytest.mark.parametrize(
    ("code", "reasons"),
    [
        (0x0000, ["NULL", "anonymous"]),
        (0x0018, ["anonymous", "RC4", "MD5"]),
        (0x0014, ["EXPORT", "DES"]),
        (0x0015, ["DES"]),
        (0x0005, ["RC4"]),
        (0xC0B4, ["NULL"]),
        (0x1301, []),
    ],
)
def test_is_weak(code: int, reasons: list[str]) -> None:
    s = reg.suite(code)
    assert s is not None
    assert reg.is_weak(s) == reasons


# -- SSLv2 -----------------------------------------------------------------------------------


def test_sslv2_kinds() -> None:
    codes = [c.code for c in reg.all_sslv2_ciphers()]
    for code in (0x010080, 0x020080, 0x030080, 0x040080, 0x050080, 0x060040, 0x0700C0):
        assert code in codes
    rc4 = reg.sslv2_cipher(0x010080)
    assert rc4 is not None
    assert (rc4.name, rc4.openssl, rc4.bits) == ("SSL_CK_RC4_128_WITH_MD5", "RC4-MD5", 128)
    exp = reg.sslv2_cipher(0x020080)
    assert exp is not None and exp.openssl == "EXP-RC4-MD5" and exp.bits == 40
    des3 = reg.sslv2_cipher(0x0700C0)
    assert des3 is not None and des3.openssl == "DES-CBC3-MD5" and des3.bits == 112
    assert reg.sslv2_cipher(0x123456) is None
    assert reg.describe_unknown("sslv2 cipher", 0x123456) == "unknown sslv2 cipher 0x123456"


# -- alerts, groups, signature schemes, extensions, versions ---------------------------------


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0, "close_notify"),
        (40, "handshake_failure"),
        (70, "protocol_version"),
        (86, "inappropriate_fallback"),
        (112, "unrecognized_name"),
        (116, "certificate_required"),
        (120, "no_application_protocol"),
        (121, "ech_required"),
    ],
)
def test_alerts(code: int, name: str) -> None:
    assert reg.alert_name(code) == name


def test_unknown_alert() -> None:
    assert reg.alert_name(255) is None
    assert reg.describe_unknown("alert", 255) == "unknown alert 0xFF"


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (23, "secp256r1"),
        (29, "x25519"),
        (30, "x448"),
        (256, "ffdhe2048"),
        (260, "ffdhe8192"),
        (0x11EC, "X25519MLKEM768"),
        (0xFF01, "arbitrary_explicit_prime_curves"),
        (0xFF02, "arbitrary_explicit_char2_curves"),
    ],
)
def test_groups(code: int, name: str) -> None:
    assert reg.group_name(code) == name
    assert reg.find_group(name) == code


def test_group_range_and_grease() -> None:
    for code in range(1, 31):
        assert reg.group_name(code) is not None, code
    assert reg.group_name(0x0A0A) is None  # GREASE


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("x25519", 29),
        ("X25519", 29),
        ("secp256r1", 23),
        ("P-256", 23),
        ("prime256v1", 23),
        ("p-384", 24),
        ("P-521", 25),
        ("ffdhe3072", 257),
    ],
)
def test_find_group_aliases(text: str, code: int) -> None:
    assert reg.find_group(text) == code


def test_find_group_unknown() -> None:
    assert reg.find_group("curve25519-ish") is None


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0x0201, "rsa_pkcs1_sha1"),
        (0x0203, "ecdsa_sha1"),
        (0x0401, "rsa_pkcs1_sha256"),
        (0x0403, "ecdsa_secp256r1_sha256"),
        (0x0804, "rsa_pss_rsae_sha256"),
        (0x0807, "ed25519"),
        (0x080B, "rsa_pss_pss_sha512"),
    ],
)
def test_sigschemes(code: int, name: str) -> None:
    assert reg.sigscheme_name(code) == name


def test_sigscheme_tls12_pairs_outside_the_registry_are_named() -> None:
    # The SignatureScheme registry reserves 0x0202 (DSA-SHA1) etc. "for backward
    # compatibility"; a TLS 1.2 server still sends them as (hash, signature) pairs (RFC 5246
    # §7.4.1.4.1), and hex like 0x0303 would read as a protocol version.
    assert reg.sigscheme_name(0x0202) == "dsa_sha1 (TLS 1.2 pair)"
    assert reg.sigscheme_name(0x0303) == "ecdsa_sha224 (TLS 1.2 pair)"
    assert reg.sigscheme_name(0x0301) == "rsa_sha224 (TLS 1.2 pair)"
    assert reg.sigscheme_name(0x0403) == "ecdsa_secp256r1_sha256"  # the registry's own name
    assert reg.sigscheme_name(0x0A01) is None  # neither registered nor a (hash, signature) pair


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0, "server_name"),
        (10, "supported_groups"),
        (11, "ec_point_formats"),
        (13, "signature_algorithms"),
        (16, "application_layer_protocol_negotiation"),
        (23, "extended_master_secret"),
        (35, "session_ticket"),
        (43, "supported_versions"),
        (47, "certificate_authorities"),
        (51, "key_share"),
        (65037, "encrypted_client_hello"),
        (65281, "renegotiation_info"),
    ],
)
def test_extensions(code: int, name: str) -> None:
    assert reg.extension_name(code) == name


def test_extension_grease_is_unknown() -> None:
    assert reg.extension_name(0x0A0A) is None
    assert reg.describe_unknown("extension", 0x0A0A) == "unknown extension 0x0A0A"


def test_version_names() -> None:
    names = [reg.version_name(c) for c in (0x0002, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304)]
    assert names == ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    assert reg.version_name(0x7F1C) is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("TLSv1.2", 0x0303),
        ("1.2", 0x0303),
        ("tls1.2", 0x0303),
        ("tls1_2", 0x0303),
        ("TLS 1.2", 0x0303),
        ("0x0303", 0x0303),
        ("TLSv1.3", 0x0304),
        ("TLSv1", 0x0301),
        ("TLSv1.0", 0x0301),
        ("tls1.1", 0x0302),
        ("ssl3", 0x0300),
        ("SSLv3", 0x0300),
        ("ssl2", 0x0002),
        ("SSLv2", 0x0002),
    ],
)
def test_find_version(text: str, code: int) -> None:
    assert reg.find_version(text) == code


@pytest.mark.parametrize("text", ["", "tls1.4", "1.4", "0x0305", "ssl"])
def test_find_version_unknown(text: str) -> None:
    assert reg.find_version(text) is None


# -- the data and its generator ----------------------------------------------------------------


def test_profiles_dir_is_the_checkout() -> None:
    assert profiles_dir() == ROOT / "profiles"
    assert (profiles_dir() / "registry" / "cipher_suites.json").is_file()


def test_json_codes_unique_in_every_file() -> None:
    for path in sorted((profiles_dir() / "registry").glob("*.json")):
        codes = [e["code"] for e in json.loads(path.read_text(encoding="utf-8"))["entries"]]
        assert len(codes) == len(set(codes)), path.name
        assert codes == sorted(codes), path.name


def test_generator_output_is_committed() -> None:
    if shutil.which("openssl") is None:
        pytest.fail("no openssl binary: scripts/bootstrap installs it", pytrace=False)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-registry"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
