"""Defaults users see in ``--help``, kept in a module that imports nothing.

The command line shows them when it defines its options; importing the prober only for two
numbers would cost every command, even ``explain``, tens of milliseconds of start-up.
"""

DEFAULT_TIMEOUT = 10.0  # seconds per phase of a probe (TCP, STARTTLS, handshake)
DEFAULT_GRACE = 0.3  # seconds to listen after the handshake for a late rejection
