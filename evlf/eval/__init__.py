"""evlf.eval."""
