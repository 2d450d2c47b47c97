"""Load harness for a claudemesh broker: drives peers over the wire protocol only (no Django imports).

Run `python -m bench --help`. See docs/benchmarks.md for the commands and the first figures.
"""
