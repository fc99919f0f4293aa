"""Small helpers that import nothing else of the package: atomic file writes (`atomic`), optional
dependencies with one clear error (`extras`), and where a result was measured (`environment`)."""
