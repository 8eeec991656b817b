"""IBM MQ channel SNI (vendor-codes.md §7) and the lab's CERTLABL listener."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from labproc import Lab, running_lab
from probing import probe_port

from probe.errors import InputError
from probe.mq import channel_sni


@pytest.mark.parametrize(
    ("channel", "sni"),
    [
        # Both examples of the reference, exactly as printed there.
        ("TO.QMGR1", "to2e-qmgr1.chl.mq.ibm.com"),
        ("to.qmgr1", "74-6f-2e-71-6d-67-72-1.chl.mq.ibm.com"),
        # The mapping rules: A-Z fold, digits stay, everything else is hex and a hyphen.
        ("SYSTEM.DEF.SVRCONN", "system2e-def2e-svrconn.chl.mq.ibm.com"),
        ("A_B%C/D-1", "a5f-b25-c2f-d2d-1.chl.mq.ibm.com"),
    ],
)
def test_channel_sni(channel: str, sni: str) -> None:
    assert channel_sni(channel) == sni


@pytest.mark.parametrize("bad", ["", "X" * 21, "CHANNEL.É"])
def test_bad_channel_names(bad: str) -> None:
    with pytest.raises(InputError):
        channel_sni(bad)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("mq-lab"), "mq-certlabl") as lab:
        yield lab


async def test_without_the_channel_sni_the_diagnosis_names_amq9673(lab: Lab) -> None:
    r = await probe_port(lab.ports["mq-certlabl"], ca=lab.ca)
    assert r.outcome == "peer_error"
    codes = {c for d in r.diagnosis for v in d.vendor for c in v.codes}
    assert {"AMQ9673", "CSQX673E"} <= codes
    assert "mq_channel_sni_required" in [d.cause for d in r.diagnosis]


async def test_with_the_channel_sni_the_channel_certificate_comes(lab: Lab, tmp_path: Path) -> None:
    r = await probe_port(lab.ports["mq-certlabl"], ca=lab.ca, mq_channel="TO.QMGR1")
    assert r.outcome == "connected"
    assert "channel TO.QMGR1" in r.server_certificates[0].subject
    assert r.offered["sni"] == "to2e-qmgr1.chl.mq.ibm.com"
