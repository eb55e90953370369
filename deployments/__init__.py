"""Deployments: routines × environments on schedules tied to the maintenance windows; the CLI."""
