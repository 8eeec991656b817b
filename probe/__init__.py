"""tlsprobe: live TLS probe and negotiation tester."""

__version__ = "0.1.0"
