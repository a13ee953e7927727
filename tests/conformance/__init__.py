"""The stream-source conformance suite: one table of behaviour rows (behaviour §3, §4, §5, §9) that every
ordered stream source passes through, parametrised by source (tests/conformance/sources.py)."""
