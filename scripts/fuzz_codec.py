"""Coverage-guided fuzzing of the wire codec with atheris (longer runs than the hypothesis suite).

The rule is the codec's contract: any bytes either parse or raise DecodeError, nothing else.
Every crash found becomes a regression input in tests/data/fuzz/ (tests/wire/test_fuzz_corpus.py
replays them all, with a corpus of interesting inputs kept from earlier runs).

    .venv/bin/pip install atheris
    .venv/bin/python scripts/fuzz_codec.py -max_total_time=300 tests/data/fuzz
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from probe.decode import decode_bytes
    from probe.wire import extensions, handshake, hello, messages, record
    from probe.wire.errors import DecodeError
    from probe.wire.transcript import Transcript

PARSERS = (
    lambda b: record.parse_records(b),
    lambda b: handshake.Defragmenter().feed(b),
    lambda b: hello.parse_client_hello(b),
    lambda b: messages.parse_server_hello(b),
    lambda b: messages.parse_certificate(b, tls13=False),
    lambda b: messages.parse_certificate(b, tls13=True),
    lambda b: messages.parse_certificate_request(b, tls13=False),
    lambda b: messages.parse_certificate_request(b, tls13=True),
    lambda b: messages.parse_server_key_exchange(b, "ECDHE"),
    lambda b: messages.parse_server_key_exchange(b, "DHE"),
    lambda b: messages.parse_sslv2_record(b),
    lambda b: messages.parse_sslv2_server_hello(b),
    lambda b: messages.decode_dn(b),
    lambda b: extensions.parse_extensions(b),
    lambda b: record.parse_alert(b),
)


def one_input(data: bytes) -> None:
    if not data:
        return
    parser = PARSERS[data[0] % len(PARSERS)]
    body = data[1:]
    with contextlib.suppress(DecodeError):  # the one allowed failure
        parser(body)
    # The tap must absorb anything, in both directions, without raising at all.
    t = Transcript()
    t.feed("server", body)
    t.feed("client", body)
    decode_bytes(body)  # the `decode` command's entry point: never raises on bytes


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
