"""The measurements behind ``ctl bench``: each module measures one thing and returns
plain dicts (rows of a table, with their yardstick and ratio), printed by
ctl/commands/bench.py and drawn by :mod:`ctl.bench.plot`. See BENCHMARKS.md."""
