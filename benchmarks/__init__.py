"""Benchmarks of Upkeep against other tools; run them as modules (`python -m benchmarks.<name>`)."""
