"""Build hosts from the inventory; one connection per host, reused within a run."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping

import paramiko
from pydantic import SecretStr

from upkeep.config.models import EnvironmentConfig, HostConfig, SSHSettings
from upkeep.config.secrets import resolve_secret
from upkeep.errors import ConfigError, SecretError
from upkeep.hosts.base import Host
from upkeep.hosts.local import LocalHost
from upkeep.hosts.ssh import SSHHost

_KEY_TYPES: tuple[type[paramiko.PKey], ...] = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def _pkey_from_secret(ref: str, resolve: Callable[[str], SecretStr]) -> paramiko.PKey:
    text = resolve(ref).get_secret_value()
    for cls in _KEY_TYPES:
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise SecretError(f"secret {ref} is not a private key paramiko can read (ed25519, ecdsa or rsa)")


def build_host(cfg: HostConfig, ssh: SSHSettings, *, resolve: Callable[[str], SecretStr] = resolve_secret) -> Host:
    """A LocalHost or an SSHHost for one inventory entry (no connection is opened yet)."""
    if cfg.transport == "local":
        return LocalHost(cfg.name, command_timeout=ssh.command_timeout.total_seconds())
    return SSHHost(
        cfg.name, cfg.address,
        port=cfg.port or ssh.port,
        user=cfg.user or ssh.user,
        known_hosts=cfg.known_hosts or ssh.known_hosts,
        key_file=cfg.key_file or ssh.key_file,
        pkey=_pkey_from_secret(ssh.key, resolve) if ssh.key and not (cfg.key_file or ssh.key_file) else None,
        connect_timeout=ssh.connect_timeout.total_seconds(),
        command_timeout=ssh.command_timeout.total_seconds(),
        keepalive=ssh.keepalive.total_seconds(),
    )


class HostPool:
    """The hosts of one environment, built on first use and closed together; `given` hosts (a test's
    LocalHost or fake, by inventory name) are used as they are and left open."""

    def __init__(self, env: EnvironmentConfig, ssh: SSHSettings, *, resolve: Callable[[str], SecretStr] = resolve_secret,
                 given: Mapping[str, Host] | None = None) -> None:
        self._env, self._ssh, self._resolve = env, ssh, resolve
        self._configs = {h.name: h for h in env.hosts}
        self._given = dict(given or {})
        unknown = sorted(set(self._given) - set(self._configs))
        if unknown:
            raise ConfigError(f"hosts given for {', '.join(unknown)}, which environments.{env.name}.hosts does not list; "
                              f"known: {', '.join(self._configs)}")
        self._hosts: dict[str, Host] = {}

    def get(self, name: str) -> Host:
        if name in self._given:
            self.get_config(name)
            return self._given[name]
        if name not in self._hosts:
            self._hosts[name] = build_host(self.get_config(name), self._ssh, resolve=self._resolve)
        return self._hosts[name]

    def select(self, names: Iterable[str] | None = None, role: str | None = None) -> dict[str, Host]:
        """Hosts by name (all when None), optionally only those with `role`."""
        chosen = list(names) if names is not None else list(self._configs)
        return {n: self.get(n) for n in chosen if role is None or role in self.get_config(n).roles}

    def get_config(self, name: str) -> HostConfig:
        if name not in self._configs:
            raise ConfigError(f"host {name!r} is not in this environment; known: {', '.join(self._configs)}")
        return self._configs[name]

    def close(self) -> None:
        for host in self._hosts.values():
            host.close()
        self._hosts.clear()

    def __enter__(self) -> HostPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
