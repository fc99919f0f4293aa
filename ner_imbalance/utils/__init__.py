"""Small helpers that import nothing else of the package: atomic file writes (`atomic`), optional
dependencies with one clear error (`extras`), where a result was measured (`environment`), a
command's `--version` and its quiet end when its reader stops reading (`command_line`), and the
`logging` configuration put back after a block that changes it (`logging_state`)."""
