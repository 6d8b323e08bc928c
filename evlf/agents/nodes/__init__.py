"""Graph nodes, one file per step: ingest, triage, retrieve, reason, ground, refine, verify, aggregate, report."""
