"""evlf.retrieval."""
