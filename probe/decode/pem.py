"""PEM blocks in the input: certificates decoded, everything else named and left alone.

``decode`` reads TLS bytes, but an operator with a certificate file will hand it over too. A
``CERTIFICATE`` block is the certificate's DER in base64 (RFC 7468 §5), the same bytes a
Certificate message carries, so a PEM file is decoded as one chunk per certificate. Other
blocks (keys, requests) are named and skipped; a private key is never shown. In a text that
also holds a hex dump (``openssl s_client`` prints the server certificate after its ``-msg``
lines) the blocks are taken out and the dump is decoded; the certificate is in its messages.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ..hexdump import Chunk, Dump
from ..wire.errors import DecodeError

_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_CERTIFICATES = frozenset({"CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Block:
    label: str  # "CERTIFICATE", "PRIVATE KEY", ...
    line: int  # 1-based line of -----BEGIN
    der: bytes | None  # None: no END line, or not base64


def split_pem(text: str) -> tuple[list[Block], str]:
    """The PEM blocks of ``text``, and the text with their lines blanked (line numbers kept,
    so that base64 never passes for hex)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _BEGIN.fullmatch(lines[i].strip())
        if m is None:
            i += 1
            continue
        end = f"-----END {m.group(1)}-----"
        j = i + 1
        while j < len(lines) and lines[j].strip() != end:
            j += 1
        if j == len(lines):  # no END: what follows may well be a dump, leave it
            blocks.append(Block(label=m.group(1), line=i + 1, der=None))
            lines[i] = ""
            i += 1
            continue
        # RFC 1421 headers ("Proc-Type: 4,ENCRYPTED") are not base64.
        body = "".join(ln.strip() for ln in lines[i + 1 : j] if ":" not in ln)
        try:
            der: bytes | None = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            der = None
        blocks.append(Block(label=m.group(1), line=i + 1, der=der))
        lines[i : j + 1] = [""] * (j + 1 - i)
        i = j + 1
    return blocks, "\n".join(lines) if blocks else text


def pem_dump(blocks: list[Block], lines: int) -> Dump:
    """The certificates of a PEM input as chunks; DecodeError when it holds none."""
    chunks: list[Chunk] = []
    notes: list[str] = []
    for b in blocks:
        if b.label not in _CERTIFICATES:
            notes.append(f"line {b.line}: a PEM {b.label} block (not a certificate) is skipped")
        elif b.der is None:
            notes.append(_broken(b))
        else:
            chunks.append(
                Chunk(data=b.der, line=b.line, style="pem", label=f"PEM {b.label} (base64 DER)")
            )
    if not chunks:
        certs = [b for b in blocks if b.label in _CERTIFICATES]
        if certs:
            raise DecodeError(_broken(certs[0]))
        what = ", ".join(dict.fromkeys(b.label for b in blocks))
        raise DecodeError(
            f"the input is PEM ({what}), not TLS bytes: decode reads hex dumps, raw TLS bytes "
            "and PEM certificates"
        )
    return Dump(chunks=tuple(chunks), styles=("pem",), notes=tuple(notes), lines=lines)


def _broken(b: Block) -> str:
    return f"line {b.line}: the PEM {b.label} block has no END line or is not valid base64"


def skipped_note(blocks: list[Block]) -> str:
    where = ", ".join(f"line {b.line}" for b in blocks[:5])
    more = f" and {len(blocks) - 5} more" if len(blocks) > 5 else ""
    return (
        f"{len(blocks)} PEM block(s) ({where}{more}) not decoded: the input holds a hex dump; "
        "give the PEM alone to decode it"
    )
