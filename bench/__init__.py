"""Benchmarks run by `make bench` against the KIS simulator (SPEC section 11)."""
