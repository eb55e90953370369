"""Inventory models, loading, units and secret references."""

from upkeep.config.loader import config_path, load_inventory, parse_inventory
from upkeep.config.models import EnvironmentConfig, HostConfig, Inventory, ServiceConfig
from upkeep.config.secrets import resolve_secret

__all__ = [
    "EnvironmentConfig", "HostConfig", "Inventory", "ServiceConfig",
    "config_path", "load_inventory", "parse_inventory", "resolve_secret",
]
