"""The lab: local listeners that replay the documented failures (SPEC "The lab")."""

# Scenarios take DEFAULT_PORT_BASE, +1, ... in catalog order. Kept here, light, so the CLI can
# show it in --help without importing the servers.
DEFAULT_PORT_BASE = 9440
