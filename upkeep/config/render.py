"""Per-host placeholders in inventory strings: `{address}`, `{name}` and the host's `vars`.

Substitution is plain text (no attribute access, no expressions); an argv keeps its words,
so a substituted value can never become shell syntax (each word is quoted when sent).
"""

from __future__ import annotations

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
