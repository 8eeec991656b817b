"""Bounded big-endian readers and writers for TLS's length-prefixed vectors (RFC 8446 §3).

Every read checks the remaining length first, so a short or lying length field becomes a
:class:`DecodeError` and never an ``IndexError`` or a silent truncation.
"""

from __future__ import annotations

from .errors import DecodeError

_Bytes = bytes  # the builtin, before Reader.bytes shadows it in annotations


class Reader:
    """Cursor over an immutable byte string; every method raises DecodeError on shortage."""

    __slots__ = ("_buf", "_pos", "_what")

    def __init__(self, buf: bytes, what: str = "message") -> None:
        self._buf = bytes(buf)
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._buf) - self._pos

    def at_end(self) -> bool:
        return self._pos >= len(self._buf)

    def bytes(self, n: int) -> _Bytes:
        if n < 0 or self._pos + n > len(self._buf):
            raise DecodeError(
                f"{self._what}: needs {n} bytes at offset {self._pos}, has {self.remaining}"
            )
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def rest(self) -> _Bytes:
        out = self._buf[self._pos :]
        self._pos = len(self._buf)
        return out

    def uint(self, width: int) -> int:
        return int.from_bytes(self.bytes(width), "big")

    def u8(self) -> int:
        return self.uint(1)

    def u16(self) -> int:
        return self.uint(2)

    def u24(self) -> int:
        return self.uint(3)

    def vector(self, len_width: int) -> _Bytes:
        """A vector with a ``len_width``-byte length prefix."""
        return self.bytes(self.uint(len_width))

    def sub(self, len_width: int, what: str | None = None) -> Reader:
        """A reader over the next length-prefixed vector."""
        return Reader(self.vector(len_width), what or self._what)

    def expect_end(self) -> None:
        if not self.at_end():
            raise DecodeError(f"{self._what}: {self.remaining} trailing bytes")


def u8(n: int) -> bytes:
    return n.to_bytes(1, "big")


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u24(n: int) -> bytes:
    return n.to_bytes(3, "big")


def vec(data: bytes, len_width: int) -> bytes:
    """``data`` with a ``len_width``-byte big-endian length prefix."""
    return len(data).to_bytes(len_width, "big") + data


def u16_list(values: list[int] | tuple[int, ...], len_width: int = 2) -> bytes:
    return vec(b"".join(u16(v) for v in values), len_width)
