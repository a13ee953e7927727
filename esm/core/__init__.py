"""Pure cores, no I/O and no await: records, the batch policy, offsets, decisions, backoff.

Everything here is a value or a small object whose methods compute; the engine and the sources
do the waiting. Each module is table-tested in tests/unit.
"""
