"""The one error the codec raises on peer input."""


class DecodeError(ValueError):
    """The bytes are not a well-formed TLS structure.

    Raised for malformed input only; incomplete input is reported by the parsers that
    can stream (they return ``None``) so that callers can tell "wait for more" from "garbage".
    """
