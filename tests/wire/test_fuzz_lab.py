"""The fuzz rule over messages captured from the lab: parse or DecodeError, nothing else.

Real server flights (TLS 1.2, where they are plaintext: ServerHello, Certificate,
CertificateRequest with an empty and with a 40 KB CA list, ServerKeyExchange, the legacy
partners' SSL 3.0 / TLS 1.1 hellos) are captured with `probe --trace`, then mutated.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from labproc import running_lab
from probing import probe_port
from test_fuzz import PARSERS, mutations

from probe.wire.errors import DecodeError
from probe.wire.handshake import Defragmenter
from probe.wire.transcript import Transcript

SCENARIOS = ("good", "client-cert-required", "client-cert-empty-ca-list",
             "client-cert-huge-ca-list", "legacy-3des", "sslv3-only")  # fmt: skip


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[bytes]]:
    with running_lab(tmp_path_factory.mktemp("fuzz-lab"), *SCENARIOS) as lab:

        async def grab() -> list[bytes]:
            out: list[bytes] = []
            for name in SCENARIOS:
                r = await probe_port(lab.ports[name], ca=lab.ca, tls_max="1.2", trace=True)
                out += [bytes.fromhex(t.hex.split()[0]) for t in r.trace if t.direction == "server"]
            return out

        yield trio.run(grab)


def test_the_capture_has_the_interesting_messages(captured: list[bytes]) -> None:
    types = {m[0] for m in captured if m}
    assert {2, 11, 12, 13, 14} <= types  # ServerHello .. ServerHelloDone
    assert max(len(m) for m in captured if m[0] == 13) > 32750  # the huge CA list


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_lab_messages_parse_or_raise_decode_error(
    captured: list[bytes], data: st.DataObject
) -> None:
    msg = data.draw(st.sampled_from(captured) | mutations(captured))
    body = msg[4:]
    for parse in PARSERS.values():
        with contextlib.suppress(DecodeError):
            parse(body)
    with contextlib.suppress(DecodeError):
        Defragmenter().feed(msg)
    t = Transcript()
    t.feed("server", b"\x16\x03\x03" + len(msg[:16384]).to_bytes(2, "big") + msg[:16384])
