"""Prefect tasks, one module per system they touch (hosts, services, Slack, reports, ...)."""
