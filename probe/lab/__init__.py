"""The lab: local listeners that replay the documented failures (SPEC "The lab")."""
