"""The reviews: performance, capacity, infrastructure, compliance, documentation (pure)."""
