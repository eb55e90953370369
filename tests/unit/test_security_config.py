"""The security section of the inventory: a wrong entry is refused before anything runs, naming the field and the
fix; waivers become the pure Waiver."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from upkeep.config import parse_inventory
from upkeep.errors import ConfigError

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[2] / "examples" / "upkeep.yaml").read_text())


def production(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE)
    env = data["environments"]["production"]
    env["security"] = {**env["security"], **changes}
    return data


def cert(**changes: Any) -> dict[str, Any]:
    return {"name": "api", "host": "prod-app-1", "port": 443, "server_name": "events.example.com", **changes}


def test_the_example_parses() -> None:
    sec = parse_inventory(production()).environments["production"].security
    assert [c.name for c in sec.certificates] == ["api-public", "api-internal-file"]
    assert sec.certificates[0].renew[0] == "/usr/bin/certbot" and sec.certificates[1].file == "{root}/tls/internal.pem"
    assert sec.waivers_list()[0].expires == date(2027, 3, 31) and sec.notify_at == "critical"
    default = parse_inventory(EXAMPLE).environments["development"].security  # not configured: checks sshd and firewall
    assert default.certificates == [] and default.sshd == ["/usr/sbin/sshd", "-T"] and default.firewall == "nft"


@pytest.mark.parametrize(("changes", "says"), [
    ({"certificates": [cert(file="/etc/ssl/a.pem")]}, "give exactly one of port (a TLS endpoint) or file"),
    ({"certificates": [cert(port=None)]}, "give exactly one of port"),
    ({"certificates": [cert(reload=["systemctl", "reload", "nginx"])]}, "reload without renew never runs"),
    ({"certificates": [cert(host="nowhere")]}, "security.certificates[0].host 'nowhere' is not one of this environment"),
    ({"certificates": [cert(), cert()]}, "duplicate name(s) api"),
    ({"certificates": [cert(port=None, file="tls/a.pem")]}, "file must be an absolute path"),
    ({"certificates": [cert(server_name="bad name")]}, "server_name"),
    ({"audit_roots": ["opt"]}, "security.audit_roots[0] 'opt': an absolute path"),
    ({"waivers": [{"pattern": "lodash", "reason": "none", "owner": "a", "expires": "2027-01-01"}]},
     "a waiver pattern matches ids `source:host:key`"),
    ({"waivers": [{"pattern": "a:b:c", "reason": "none", "owner": "a", "expires": "soon"}]}, "expires"),
    ({"firewall": "pf"}, "firewall"),
    ({"notify_at": "urgent"}, "notify_at"),
    ({"feed": {"source": "x", "release": "Ubuntu:22.04"}}, "release"),
    ({"colour": "red"}, "colour"),
])
def test_a_wrong_security_entry_names_the_field_and_the_fix(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_inventory(production(**changes))
    assert says in str(err.value), str(err.value)


def test_become_on_a_certificate_needs_the_environments_become() -> None:
    data = production(certificates=[cert(become=True)])
    del data["environments"]["production"]["become"]
    with pytest.raises(ConfigError, match=r"sets become: true, but the environment has no become"):
        parse_inventory(data)
