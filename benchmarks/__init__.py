"""Benchmarks: `make bench` runs benchmarks.run, which calls each section's main()."""
