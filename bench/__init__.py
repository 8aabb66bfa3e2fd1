"""Benchmarks: a simulated, time-scaled provider server (`bench.simulator`) and what runs against it."""
