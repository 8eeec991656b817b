"""Replays the fuzzing corpus (tests/data/fuzz/, kept from scripts/fuzz_codec.py runs, and any
crash it ever finds) through every parser: parse or DecodeError, and the tap and the `decode`
entry point never raise."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from probe.decode import decode_bytes
from probe.wire import extensions, handshake, hello, messages, record
from probe.wire.errors import DecodeError
from probe.wire.transcript import Transcript

CORPUS = sorted((Path(__file__).parents[1] / "data" / "fuzz").iterdir())
PARSERS = (
    record.parse_records,
    lambda b: handshake.Defragmenter().feed(b),
    hello.parse_client_hello,
    messages.parse_server_hello,
    lambda b: messages.parse_certificate(b, tls13=False),
    lambda b: messages.parse_certificate(b, tls13=True),
    lambda b: messages.parse_certificate_request(b, tls13=False),
    lambda b: messages.parse_certificate_request(b, tls13=True),
    lambda b: messages.parse_server_key_exchange(b, "ECDHE"),
    lambda b: messages.parse_server_key_exchange(b, "DHE"),
    messages.parse_sslv2_record,
    messages.parse_sslv2_server_hello,
    messages.decode_dn,
    extensions.parse_extensions,
    record.parse_alert,
)


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_input(path: Path) -> None:
    data = path.read_bytes()
    for parse in PARSERS:
        with contextlib.suppress(DecodeError):
            parse(data)  # type: ignore[operator]
        with contextlib.suppress(DecodeError):
            parse(data[1:])  # type: ignore[operator]
    t = Transcript()
    t.feed("server", data)
    t.feed("client", data)
    decode_bytes(data)
