"""Small TLS servers for behaviours `openssl s_server` and `gnutls-serv` do not offer.

They run the stdlib ``ssl`` module (OpenSSL) behind trio's SSLStream: a real TLS stack, driven
by a few lines of script (complete the handshake, then hang up), on 127.0.0.1.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import trio


def server_context(chain: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(chain), str(key))
    return ctx


@asynccontextmanager
async def close_after_handshake(
    chain: Path, key: Path, *, close_notify: bool = True
) -> AsyncIterator[int]:
    """Completes the TLS handshake, then closes (with close_notify, or a bare FIN)."""
    ctx = server_context(chain, key)

    async def handler(raw: trio.SocketStream) -> None:
        stream = trio.SSLStream(raw, ctx, server_side=True)
        try:
            await stream.do_handshake()
            # TLS 1.3 sends session tickets after the client's Finished; give them a moment
            # to leave so the client sees a completed handshake before the close.
            await trio.sleep(0.05)
            if close_notify:
                await stream.aclose()
            else:
                await raw.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        yield int(listeners[0].socket.getsockname()[1])
        nursery.cancel_scope.cancel()
