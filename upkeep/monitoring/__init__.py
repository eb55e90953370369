"""Health samples, alert rules with duration, and their store (no Prefect here)."""
