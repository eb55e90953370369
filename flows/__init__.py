"""Prefect flows, one module per routine of the maintenance guides."""
