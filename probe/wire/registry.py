"""Names for the numbers on the wire: cipher suites, SSLv2 cipher kinds, alerts, groups,
signature schemes, extensions and protocol versions.

The facts live in profiles/registry/*.json, generated once by scripts/gen-registry from the
IANA registries and OpenSSL's cipher names. Each file is read on first use and kept
(functools.cache); nothing here touches the network or the OpenSSL library.

Names are spelled exactly as IANA spells them. A value the registry does not know is not an
error: lookups return None and callers show the raw number (describe_unknown), because
peers send GREASE, private-use and brand-new codepoints all the time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from probe.paths import profiles_dir


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    code: int
    iana: str
    openssl: str | None
    kx: str
    auth: str
    cipher: str
    mac: str
    bits: int
    min_version: int
    export: bool
    tls13: bool
    scsv: bool

    @property
    def hex(self) -> str:
        return f"0x{self.code:04X}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SSLv2Cipher:
    code: int
    name: str
    openssl: str | None
    bits: int


def _entries(name: str) -> list[dict[str, Any]]:
    path = profiles_dir() / "registry" / f"{name}.json"
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["entries"]
    return entries


def _names(name: str) -> dict[int, str]:
    return {int(e["code"]): str(e["name"]) for e in _entries(name)}


def _fold(name: str) -> str:
    return name.strip().upper()


# -- cipher suites ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SuiteIndex:
    ordered: tuple[Suite, ...]
    by_code: dict[int, Suite]
    by_name: dict[str, Suite]  # folded IANA, OpenSSL and alias spellings


@cache
def _suites() -> _SuiteIndex:
    ordered: list[Suite] = []
    by_name: dict[str, Suite] = {}
    for e in _entries("cipher_suites"):
        openssl = e["openssl"]
        s = Suite(
            code=int(e["code"]),
            iana=str(e["iana"]),
            openssl=None if openssl is None else str(openssl),
            kx=str(e["kx"]),
            auth=str(e["auth"]),
            cipher=str(e["cipher"]),
            mac=str(e["mac"]),
            bits=int(e["bits"]),
            min_version=int(e["min_version"]),
            export=bool(e["export"]),
            tls13=bool(e["tls13"]),
            scsv=bool(e["scsv"]),
        )
        ordered.append(s)
        for spelling in (s.iana, s.openssl, *e.get("openssl_aliases", ())):
            if spelling:
                by_name[_fold(str(spelling))] = s
    ordered.sort(key=lambda s: s.code)
    return _SuiteIndex(tuple(ordered), {s.code: s for s in ordered}, by_name)


def suite(code: int) -> Suite | None:
    return _suites().by_code.get(code)


def all_suites() -> tuple[Suite, ...]:
    """Every IANA-assigned suite, in code order."""
    return _suites().ordered


# "0xC02F", "C02F", and "0xC0,0x2F" as `openssl ciphers -V` prints it.
_SUITE_HEX = re.compile(r"(?:0x)?([0-9a-f]{4})|0x([0-9a-f]{2}),\s*0x([0-9a-f]{2})", re.IGNORECASE)


def find_suite(name: str) -> Suite | None:
    """Look a suite up by IANA name, OpenSSL name (any case) or hex code."""
    text = name.strip()
    m = _SUITE_HEX.fullmatch(text)
    if m:
        return suite(int(m.group(1) or m.group(2) + m.group(3), 16))
    index = _suites().by_name
    found = index.get(_fold(text))
    # Java and IBM stacks (JSSE, z/OS System SSL) spell the pre-TLS suites "SSL_RSA_WITH_...".
    if found is None and _fold(text).startswith("SSL_"):
        found = index.get("TLS_" + _fold(text)[4:])
    return found


_WEAK_CIPHERS = {
    "RC4": ("RC4_40", "RC4_128"),
    "3DES": ("3DES_EDE_CBC",),
    "DES": ("DES_CBC", "DES40_CBC", "DES_CBC_40"),
}


def is_weak(s: Suite) -> list[str]:
    """Why a suite is weak, among NULL, EXPORT, anonymous, RC4, 3DES, DES, MD5; [] if not."""
    if s.scsv:
        return []  # a signal, never negotiated
    reasons: list[str] = []
    if s.cipher == "NULL":  # includes TLS 1.3's integrity-only suites (RFC 9150)
        reasons.append("NULL")
    if s.export:
        reasons.append("EXPORT")
    if s.auth in ("anon", "NULL"):
        reasons.append("anonymous")
    reasons += [reason for reason, ciphers in _WEAK_CIPHERS.items() if s.cipher in ciphers]
    if s.mac == "MD5":
        reasons.append("MD5")
    return reasons


# -- SSLv2 -----------------------------------------------------------------------------------


@cache
def _sslv2() -> dict[int, SSLv2Cipher]:
    out: dict[int, SSLv2Cipher] = {}
    for e in _entries("sslv2_ciphers"):
        openssl = e["openssl"]
        c = SSLv2Cipher(
            code=int(e["code"]),
            name=str(e["name"]),
            openssl=None if openssl is None else str(openssl),
            bits=int(e["bits"]),
        )
        out[c.code] = c
    return out


def sslv2_cipher(code: int) -> SSLv2Cipher | None:
    return _sslv2().get(code)


def all_sslv2_ciphers() -> tuple[SSLv2Cipher, ...]:
    return tuple(sorted(_sslv2().values(), key=lambda c: c.code))


# -- alerts, groups, signature schemes, extensions -------------------------------------------


@cache
def _alerts() -> dict[int, str]:
    return _names("alerts")


@cache
def _groups() -> dict[int, str]:
    return _names("groups")


@cache
def _group_index() -> dict[str, int]:
    index: dict[str, int] = {}
    for e in _entries("groups"):
        for spelling in (e["name"], *e.get("aliases", ())):
            index[_fold(str(spelling))] = int(e["code"])
    return index


@cache
def _sigschemes() -> dict[int, str]:
    return _names("signature_schemes")


@cache
def _extensions() -> dict[int, str]:
    return _names("extensions")


def alert_name(code: int) -> str | None:
    return _alerts().get(code)


def group_name(code: int) -> str | None:
    return _groups().get(code)


def all_groups() -> tuple[int, ...]:
    """Every registered named group, by code."""
    return tuple(sorted(_groups()))


def find_group(name: str) -> int | None:
    """IANA name or OpenSSL/NIST alias ("x25519", "secp256r1", "P-256", "prime256v1")."""
    return _group_index().get(_fold(name))


# RFC 5246 §7.4.1.4.1: before TLS 1.3 the two bytes are a (HashAlgorithm, SignatureAlgorithm)
# pair. The SignatureScheme registry names only the pairs TLS 1.3 kept; servers still send the
# others (sha224, DSA), which would otherwise show as hex that looks like a version number.
_TLS12_HASHES = {1: "md5", 2: "sha1", 3: "sha224", 4: "sha256", 5: "sha384", 6: "sha512"}
_TLS12_SIGNATURES = {1: "rsa", 2: "dsa", 3: "ecdsa"}


def sigscheme_name(code: int) -> str | None:
    name = _sigschemes().get(code)
    if name is not None:
        return name
    hash_name = _TLS12_HASHES.get(code >> 8)
    sig_name = _TLS12_SIGNATURES.get(code & 0xFF)
    if hash_name and sig_name:
        return f"{sig_name}_{hash_name} (TLS 1.2 pair)"
    return None


def extension_name(code: int) -> str | None:
    return _extensions().get(code)


# -- versions --------------------------------------------------------------------------------


@cache
def _versions() -> tuple[dict[int, str], dict[str, int]]:
    names: dict[int, str] = {}
    index: dict[str, int] = {}
    for e in _entries("versions"):
        code, name = int(e["code"]), str(e["name"])
        names[code] = name
        for spelling in (name, *e.get("aliases", ())):
            index[_normalise_version(str(spelling))] = code
    return names, index


def _normalise_version(text: str) -> str:
    # "TLSv1.2", "tls1_2", "TLS 1.2" -> "tls1.2"; "SSLv3" -> "ssl3". No name has another "v".
    return text.strip().lower().replace(" ", "").replace("v", "").replace("_", ".")


def version_name(code: int) -> str | None:
    """0x0303 -> "TLSv1.2"."""
    return _versions()[0].get(code)


def find_version(name: str) -> int | None:
    """Accepts "TLSv1.2", "1.2", "tls1.2", "tls1_2", "ssl3", "SSLv3", "ssl2", "0x0303"."""
    text = name.strip()
    if re.fullmatch(r"0x[0-9a-fA-F]{4}", text):
        code = int(text, 16)
        return code if code in _versions()[0] else None
    return _versions()[1].get(_normalise_version(text))


def describe_unknown(kind: str, code: int) -> str:
    """How to show a value no registry names: the kind and the raw number in hex."""
    width = 6 if code > 0xFFFF else 2 if kind == "alert" else 4
    return f"unknown {kind} 0x{code:0{width}X}"
