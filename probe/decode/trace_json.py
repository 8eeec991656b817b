"""``tlsprobe probe --trace --json`` output as chunks: each trace entry is one, with its
direction and what the probe said it was (the ``what`` field gives the hint)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..hexdump import Chunk, Dump
from ..hexlines import SHOWN_IN_JSON
from ..wire.errors import DecodeError

_HEX = re.compile(r"[0-9A-Fa-f]+\Z")
_HINTS = {
    "alert": "alert",
    "changecipherspec": "ccs",
    "encrypted": "opaque",
    "application": "opaque",
    "heartbeat": "opaque",
}


def read_trace_json(text: str) -> Dump | None:
    """The probe result, or its ``trace`` list alone; None when ``text`` is neither."""
    try:
        doc: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    entries = doc.get("trace") if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        return None
    if isinstance(doc, dict) and not entries:
        raise DecodeError("the probe result holds no trace: run tlsprobe probe with --trace --json")
    chunks: list[Chunk] = []
    notes: list[str] = []
    for n, e in enumerate(entries, 1):
        if not isinstance(e, dict) or not isinstance(e.get("hex"), str):
            continue
        shown, _, rest = e["hex"].partition(" ")
        if not shown:
            continue
        if not _HEX.match(shown) or len(shown) % 2:
            notes.append(f"trace entry {n}: hex field is not hex; skipped")
            continue
        data = bytes.fromhex(shown)
        missing = 0
        if (m := SHOWN_IN_JSON.search(rest)) is not None:
            missing = max(0, int(m.group(1)) - len(data))
        raw_what = e.get("what")
        what = raw_what if isinstance(raw_what, str) else ""
        first = what.split()[0].lower() if what.split() else ""
        direction = e.get("direction") if e.get("direction") in ("client", "server") else None
        chunks.append(
            Chunk(
                data=data,
                line=n,
                style="json",
                label=what or None,
                direction=direction,
                hint=_HINTS.get(first, "handshake"),
                missing_after=missing,
            )
        )
    if not chunks:
        return None
    return Dump(chunks=tuple(chunks), styles=("json",), notes=tuple(notes), lines=len(entries))
