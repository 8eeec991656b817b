"""Suites, key schedule and record protection of SSL 3.0, TLS 1.0 and TLS 1.1, in pure Python.

Theory of operation
-------------------
The cryptography that :mod:`.legacytls` needs and the bundled OpenSSL no longer offers, with
`cryptography` for the primitives only (MD5/SHA-1, HMAC, RC4, 3DES and AES in CBC). Nothing
here knows the order of the handshake or touches a socket; two layers, each usable alone:

* The key schedule: pure functions of bytes. SSL 3.0 derives its master secret and key block
  from nested MD5(SHA-1("A" | "BB" | "CCC" ...)) (RFC 6101 §6.1, §6.2.2) and MACs records with
  the pad1/pad2 construction (§5.2.3.1); TLS 1.0/1.1 use the PRF P_MD5 xor P_SHA1 (RFC 2246
  §5) and HMAC (§6.2.3.1).
* :class:`RecordCipher`, one direction of the record protection: MAC-then-encrypt with RC4 or a
  CBC cipher. The CBC IV chains from the previous record in SSL 3.0 and TLS 1.0 (RFC 2246
  §6.2.3.2) and is explicit per record in TLS 1.1 (RFC 4346 §6.2.3.2).
  :func:`derive_ciphers` cuts both directions from the key block (RFC 2246 §6.3).

A record that fails to decrypt, unpad or authenticate raises the one :class:`BadRecordMac`,
since the three must look alike on the wire: one alert, bad_record_mac.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, CipherAlgorithm, modes
from cryptography.hazmat.primitives.ciphers.algorithms import AES

from ..wire.buffer import u8, u16

SSL3, TLS10, TLS11 = 0x0300, 0x0301, 0x0302


# --- suites ---------------------------------------------------------------------------------------


def _legacy_algorithm(name: str) -> type[CipherAlgorithm]:
    # cryptography 43 moved RC4 and 3DES to `decrepit`; older releases have them in primitives.
    for module in (
        "cryptography.hazmat.decrepit.ciphers.algorithms",
        "cryptography.hazmat.primitives.ciphers.algorithms",
    ):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if found is not None:
            algorithm: type[CipherAlgorithm] = found
            return algorithm
    raise ImportError(f"cryptography provides no {name}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacySuite:
    code: int
    name: str  # IANA name
    algorithm: Callable[[bytes], CipherAlgorithm]
    key_len: int
    block: int  # 0: stream cipher
    mac: str  # hashlib name

    @property
    def mac_len(self) -> int:
        return hashlib.new(self.mac).digest_size


SUITES: dict[int, LegacySuite] = {
    s.code: s
    for s in (
        LegacySuite(code=0x0004, name="TLS_RSA_WITH_RC4_128_MD5",
                    algorithm=_legacy_algorithm("ARC4"), key_len=16, block=0, mac="md5"),
        LegacySuite(code=0x0005, name="TLS_RSA_WITH_RC4_128_SHA",
                    algorithm=_legacy_algorithm("ARC4"), key_len=16, block=0, mac="sha1"),
        LegacySuite(code=0x000A, name="TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                    algorithm=_legacy_algorithm("TripleDES"), key_len=24, block=8, mac="sha1"),
        LegacySuite(code=0x002F, name="TLS_RSA_WITH_AES_128_CBC_SHA",
                    algorithm=AES, key_len=16, block=16, mac="sha1"),
    )
}  # fmt: skip


# --- key schedule ---------------------------------------------------------------------------------

# RFC 6101 §5.2.3.1: pad_1 / pad_2 are 48 bytes for MD5 and 40 for SHA-1.
_SSL3_PAD_LEN = {"md5": 48, "sha1": 40}
_SSL3_SENDER = {True: b"CLNT", False: b"SRVR"}  # RFC 6101 §5.6.9
_TLS_FINISHED = {True: b"client finished", False: b"server finished"}  # RFC 2246 §7.4.9


def _p_hash(name: str, secret: bytes, seed: bytes, n: int) -> bytes:
    """P_hash of RFC 2246 §5: HMAC(secret, A(i) + seed) with A(0) = seed."""
    out = b""
    a = seed
    while len(out) < n:
        a = hmac.digest(secret, a, name)
        out += hmac.digest(secret, a + seed, name)
    return out[:n]


def tls10_prf(secret: bytes, label: bytes, seed: bytes, n: int) -> bytes:
    """PRF = P_MD5(S1, label + seed) XOR P_SHA-1(S2, label + seed) (RFC 2246 §5)."""
    half = (len(secret) + 1) // 2  # S1 and S2 share a byte when the length is odd
    md5 = _p_hash("md5", secret[:half], label + seed, n)
    sha = _p_hash("sha1", secret[len(secret) - half :], label + seed, n)
    return bytes(x ^ y for x, y in zip(md5, sha, strict=True))


def ssl3_expand(secret: bytes, seed: bytes, n: int) -> bytes:
    """MD5(secret + SHA1("A" + secret + seed)) + MD5(... "BB" ...) + ... (RFC 6101 §6.1)."""
    out = b""
    i = 0
    while len(out) < n:
        salt = bytes([ord("A") + i]) * (i + 1)
        inner = hashlib.sha1(salt + secret + seed).digest()
        out += hashlib.md5(secret + inner).digest()
        i += 1
    return out[:n]


def master_secret(
    version: int, premaster: bytes, client_random: bytes, server_random: bytes
) -> bytes:
    if version == SSL3:
        return ssl3_expand(premaster, client_random + server_random, 48)
    return tls10_prf(premaster, b"master secret", client_random + server_random, 48)


def key_block(
    version: int, master: bytes, client_random: bytes, server_random: bytes, n: int
) -> bytes:
    """Note the server random comes first here (RFC 6101 §6.2.2, RFC 2246 §6.3)."""
    if version == SSL3:
        return ssl3_expand(master, server_random + client_random, n)
    return tls10_prf(master, b"key expansion", server_random + client_random, n)


def finished_verify_data(version: int, master: bytes, transcript: bytes, *, client: bool) -> bytes:
    """The Finished body: 36 bytes in SSL 3.0 (RFC 6101 §5.6.9), 12 in TLS (RFC 2246 §7.4.9)."""
    if version == SSL3:
        out = b""
        for name in ("md5", "sha1"):
            pad = _SSL3_PAD_LEN[name]
            inner = hashlib.new(name, transcript + _SSL3_SENDER[client] + master + b"\x36" * pad)
            out += hashlib.new(name, master + b"\x5c" * pad + inner.digest()).digest()
        return out
    digest = hashlib.md5(transcript).digest() + hashlib.sha1(transcript).digest()
    return tls10_prf(master, _TLS_FINISHED[client], digest, 12)


def record_mac(
    version: int, mac: str, secret: bytes, seq: int, ctype: int, record_version: int, data: bytes
) -> bytes:
    """SSL 3.0's pad1/pad2 MAC (RFC 6101 §5.2.3.1) or TLS's HMAC (RFC 2246 §6.2.3.1)."""
    head = seq.to_bytes(8, "big") + u8(ctype)
    if version == SSL3:
        pad = _SSL3_PAD_LEN[mac]
        inner = hashlib.new(mac, secret + b"\x36" * pad + head + u16(len(data)) + data).digest()
        return hashlib.new(mac, secret + b"\x5c" * pad + inner).digest()
    return hmac.digest(secret, head + u16(record_version) + u16(len(data)) + data, mac)


# --- record protection ----------------------------------------------------------------------------


class BadRecordMac(Exception):
    """A record failed to decrypt, unpad or authenticate: all three look alike on the wire."""


class RecordCipher:
    """One direction of the record layer after ChangeCipherSpec: MAC, pad, encrypt."""

    def __init__(
        self, *, version: int, suite: LegacySuite, mac_secret: bytes, key: bytes, iv: bytes
    ) -> None:
        self.version = version
        self.suite = suite
        self.mac_secret = mac_secret
        self.key = key
        self.iv = iv  # CBC chaining state for SSL 3.0 / TLS 1.0; unused in TLS 1.1
        self.seq = 0  # RFC 2246 §6.1: starts at 0 for each new cipher state
        # RC4 is one keystream for the whole connection, so one context per direction.
        self._stream = Cipher(suite.algorithm(key), None) if suite.block == 0 else None
        self._enc = self._stream.encryptor() if self._stream else None
        self._dec = self._stream.decryptor() if self._stream else None

    def _mac(self, ctype: int, record_version: int, data: bytes) -> bytes:
        return record_mac(
            self.version, self.suite.mac, self.mac_secret, self.seq, ctype, record_version, data
        )

    def seal(self, ctype: int, data: bytes) -> bytes:
        """The protected fragment for one record of ``data`` (at most 2^14 bytes)."""
        body = data + self._mac(ctype, self.version, data)
        self.seq += 1
        if self._enc is not None:
            return self._enc.update(body)
        block = self.suite.block
        pad = block - 1 - len(body) % block
        body += bytes([pad]) * (pad + 1)  # RFC 2246 §6.2.3.2: every padding byte is the length
        if self.version >= TLS11:
            iv = os.urandom(block)  # RFC 4346 §6.2.3.2: a fresh explicit IV per record
            return iv + self._cbc(iv, encrypt=True, data=body)
        out = self._cbc(self.iv, encrypt=True, data=body)
        self.iv = out[-block:]  # RFC 2246 §6.2.3.2: the last ciphertext block chains on
        return out

    def open(self, ctype: int, record_version: int, fragment: bytes) -> bytes:
        """The plaintext of one protected fragment, or :class:`BadRecordMac`."""
        mac_len = self.suite.mac_len
        if self._dec is not None:
            body = self._dec.update(fragment)
            if len(body) < mac_len:
                raise BadRecordMac("record shorter than its MAC")
            data, tag = body[:-mac_len], body[-mac_len:]
        else:
            data, tag = self._open_cbc(fragment)
        expected = self._mac(ctype, record_version, data)
        self.seq += 1
        if not hmac.compare_digest(tag, expected):
            raise BadRecordMac("MAC mismatch")
        return data

    def _open_cbc(self, fragment: bytes) -> tuple[bytes, bytes]:
        block, mac_len = self.suite.block, self.suite.mac_len
        if self.version >= TLS11:
            iv, fragment = fragment[:block], fragment[block:]
        else:
            iv = self.iv
        if not fragment or len(fragment) % block or len(fragment) < mac_len + 1:
            raise BadRecordMac(f"ciphertext of {len(fragment)} bytes")
        if self.version < TLS11:
            self.iv = fragment[-block:]
        body = self._cbc(iv, encrypt=False, data=fragment)
        pad = body[-1]
        ok = pad + 1 + mac_len <= len(body)
        if self.version == SSL3:
            ok = ok and pad < block  # RFC 6101 §5.2.3.2: padding shorter than a block
        else:
            ok = ok and body[-pad - 1 :] == bytes([pad]) * (pad + 1)
        if not ok:
            # RFC 5246 §6.2.3.2: carry on as if unpadded so bad padding costs a MAC as well.
            pad = -1
        data_end = len(body) - pad - 1 - mac_len
        data, tag = body[:data_end], body[data_end : data_end + mac_len]
        if not ok:
            self._mac(0, 0, data)
            raise BadRecordMac("bad CBC padding")
        return data, tag

    def _cbc(self, iv: bytes, *, encrypt: bool, data: bytes) -> bytes:
        cipher = Cipher(self.suite.algorithm(self.key), modes.CBC(iv))
        ctx = cipher.encryptor() if encrypt else cipher.decryptor()
        return ctx.update(data) + ctx.finalize()


def derive_ciphers(
    version: int, suite: LegacySuite, master: bytes, client_random: bytes, server_random: bytes
) -> tuple[RecordCipher, RecordCipher]:
    """(client write, server write) cut from the key block (RFC 2246 §6.3)."""
    iv_len = suite.block if version < TLS11 else 0  # RFC 4346 §6.3: TLS 1.1 derives no IV
    sizes = (suite.mac_len, suite.mac_len, suite.key_len, suite.key_len, iv_len, iv_len)
    block = key_block(version, master, client_random, server_random, sum(sizes))
    parts: list[bytes] = []
    for n in sizes:
        parts.append(block[:n])
        block = block[n:]
    cmac, smac, ckey, skey, civ, siv = parts
    return (
        RecordCipher(version=version, suite=suite, mac_secret=cmac, key=ckey, iv=civ),
        RecordCipher(version=version, suite=suite, mac_secret=smac, key=skey, iv=siv),
    )
