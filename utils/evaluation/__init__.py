"""Evaluation, numpy only (never paddle): retrieval metrics with exact semantics (metrics), code
health (code_health), the LSH / ITQ baselines (baselines), the P-R and precision@N plots (plots)
and the picture of a query beside its matches (pictures)."""
