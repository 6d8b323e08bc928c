"""evlf.plugins."""
