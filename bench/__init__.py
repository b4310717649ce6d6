"""Benchmarks (`make bench`): each bench_*.py module measures onair against a same-run reference."""
