"""Pure TLS wire codec: no sockets, no trio, no pyOpenSSL.

Everything here takes bytes and returns values. Peer input either parses or raises
:class:`probe.wire.errors.DecodeError`; nothing else escapes.
"""
