"""Firewall review: a ruleset normalised and diffed against an approved baseline (pure).

`nft -j list ruleset` is normalised to one line per chain (its hook, priority and policy) and per rule (its
expressions), in ruleset order, without what changes on its own: handles (renumbered on every reload),
counters' packets and bytes, and nft's metainfo. A rule added, removed or changed is a finding; the same
ruleset loaded again (new handles, other counters) is not. No maintained tool diffs rules against a baseline.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from typing import Any

from upkeep.errors import SecurityInputError
from upkeep.security.findings import Finding


def _strip(value: Any) -> Any:
    """Without handles and counter values, keys sorted (a canonical form of one nft JSON object)."""
    if isinstance(value, dict):
        out = {}
        for k, v in sorted(value.items()):
            if k == "handle":
                continue
            out[k] = None if k == "counter" else _strip(v)
        return out
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def normalise_nft(text: str) -> list[str]:
    """The ruleset of `nft -j list ruleset` as comparable lines: `table inet filter`, `chain inet filter input:
    {...}`, `rule inet filter input: [...]`."""
    try:
        data = json.loads(text)
        items = data["nftables"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SecurityInputError(f"firewall ruleset: not the JSON of `nft -j list ruleset` ({exc})") from exc
    lines = []
    for item in items:
        (kind, body), = item.items()
        if kind == "metainfo":
            continue
        where = f"{body.get('family')} {body.get('table', body.get('name'))}"
        if kind == "table":
            lines.append(f"table {body['family']} {body['name']}")
        elif kind == "chain":
            spec = {k: v for k, v in _strip(body).items() if k not in ("family", "table", "name")}
            lines.append(f"chain {where} {body['name']}: {json.dumps(spec, sort_keys=True)}")
        elif kind == "rule":
            lines.append(f"rule {where} {body['chain']}: {json.dumps(_strip(body.get('expr', [])), sort_keys=True)}")
        else:  # sets, maps, elements: kept whole
            lines.append(f"{kind} {where}: {json.dumps(_strip(body), sort_keys=True)}")
    return lines


def normalise_iptables(text: str) -> list[str]:
    """`iptables-save` as comparable lines: comments (with their dates) dropped, chain counters `[packets:bytes]`
    zeroed, rule counters (`-c` / `[p:b]` prefixes) removed."""
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            line = re.sub(r"\s\[\d+:\d+\]$", "", line)
        line = re.sub(r"^\[\d+:\d+\]\s+", "", line)
        line = re.sub(r"\s-c\s\d+\s\d+", "", line)
        lines.append(line)
    return lines


def firewall_findings(current: Sequence[str], baseline: Sequence[str] | None, host: str) -> list[Finding]:
    """The differences from the approved baseline, one finding per line added or removed; none without a
    baseline yet (the first review proposes the current ruleset as the baseline)."""
    if baseline is None:
        return []
    out = []
    for line in difflib.unified_diff(list(baseline), list(current), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        sign, rule = line[0], line[1:]
        out.append(Finding("firewall", host, f"{'added' if sign == '+' else 'removed'} {rule}", "high",
                           f"firewall rule {'added' if sign == '+' else 'removed'} since the approved baseline",
                           rule[:300], "approve the new ruleset as the baseline if the change was intended, else revert it"))
    return out
