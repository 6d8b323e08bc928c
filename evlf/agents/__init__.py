"""evlf.agents."""
