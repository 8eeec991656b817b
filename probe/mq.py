"""IBM MQ conventions the prober needs: the SNI an MQ peer derives from a channel name.

MQ (8.0+) sends ``<mapped channel>.chl.mq.ibm.com`` as the TLS server name so a queue manager
with per-channel certificates (CERTLABL) can pick one (vendor-codes.md §7): upper-case letters
fold to lower case, digits stay, every other character (lower-case letters included) becomes its
two-digit lower-case hex code and a hyphen. ``TO.QMGR1`` -> ``to2e-qmgr1.chl.mq.ibm.com``.
"""

from __future__ import annotations

from .errors import InputError

SNI_SUFFIX = ".chl.mq.ibm.com"
MAX_CHANNEL_NAME = 20  # MQCHANNEL_NAME_LENGTH


def channel_sni(channel: str) -> str:
    if not channel or len(channel) > MAX_CHANNEL_NAME:
        raise InputError(f"MQ channel name {channel!r}: must be 1 to {MAX_CHANNEL_NAME} characters")
    try:
        channel.encode("ascii")
    except UnicodeEncodeError:
        raise InputError(f"MQ channel name {channel!r}: only ASCII characters are valid") from None
    out = []
    for ch in channel:
        if "A" <= ch <= "Z":
            out.append(ch.lower())
        elif "0" <= ch <= "9":
            out.append(ch)
        else:
            out.append(f"{ord(ch):02x}-")
    return "".join(out) + SNI_SUFFIX
