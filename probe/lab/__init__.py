"""The lab: local listeners that replay the documented failures (SPEC "The lab")."""

# Kept here, light, so the CLI can show the default in --help and the plan runner can find a
# `lab:NAME` port without importing the servers.
DEFAULT_PORT_BASE = 9440


def scenario_port(base: int, index: int, *, repeat: int = 1, copy: int = 0) -> int:
    """The port of copy ``copy`` of the scenario at catalog index ``index``.

    The catalog index, not the position among the scenarios being served, so a scenario keeps
    its port whichever others are served with it: `lab:NAME` in a plan, --list and the README
    all name the same port for a lab serving a subset.
    """
    return base + index * repeat + copy
