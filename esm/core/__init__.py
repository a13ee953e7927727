"""Pure cores, no I/O and no await: records, the batch policy, offsets, invoke results, outcomes,
decisions and their condition names, backoff. The core imports nothing from esm above it.

Everything here is a value or a small object whose methods compute; the engine and the sources
do the waiting. Each module is table-tested in tests/unit.
"""
