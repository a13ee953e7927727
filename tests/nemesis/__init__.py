"""The nemesis (issue 23): three esm replicas, every source, a seeded schedule of overlapping
faults, and a checker over the whole history. Run it with scripts/nemesis.
"""
