"""Per-host placeholders in inventory strings: `{address}`, `{name}` and the host's `vars`.

Substitution is plain text (no attribute access, no expressions); an argv keeps its words,
so a substituted value can never become shell syntax (each word is quoted when sent).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from upkeep.config.models import HostConfig
from upkeep.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render(template: str, host: HostConfig) -> str:
    """Replace `{placeholder}`s with the host's values; unknown names are a ConfigError."""
    values = {**host.vars, "name": host.name, "address": host.address}

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise ConfigError(
                f"{template!r}: unknown placeholder {{{key}}} for host {host.name}; "
                f"known: {', '.join(sorted(values))} (add it under the host's vars)"
            )
        return values[key]

    return _PLACEHOLDER.sub(sub, template)


def render_argv(argv: Sequence[str], host: HostConfig) -> list[str]:
    return [render(word, host) for word in argv]


def host_path(template: str, host: HostConfig, field: str) -> str:
    """`template` rendered for `host`: it must be an absolute, normalised path (a host variable that
    renders to `-delete` or `../..` would otherwise reach find, rm or mv)."""
    path = render(template, host)
    if not posixpath.isabs(path) or posixpath.normpath(path) != path or "\n" in path:
        raise ConfigError(f"{field} {template!r} renders to {path!r} on host {host.name}: write an absolute path without "
                          "'..', '//' or a trailing '/' (check the host's vars)")
    return path
