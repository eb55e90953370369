"""Whether Upkeep may talk to a Prefect server as configured (pure): a server anyone else can reach must ask for an
auth string (`PREFECT_SERVER_API_AUTH_STRING` on the server, `PREFECT_API_AUTH_STRING` on its clients, both from a
secret) or be Prefect Cloud (`PREFECT_API_KEY`); a loopback server may stay open, and is said to be open."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

Access = Literal["authenticated", "open-loopback", "refused"]


@dataclass(frozen=True)
class ServerAccess:
    access: Access
    message: str


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_access(api_url: str | None, *, auth_string: bool, api_key: bool) -> ServerAccess:
    """How Upkeep reaches the server at `api_url` (None: Prefect's temporary local server)."""
    parts = urlsplit(api_url or "http://127.0.0.1")
    host = parts.hostname or ""
    if auth_string or api_key:
        how = "its auth string (PREFECT_API_AUTH_STRING)" if auth_string else "an API key (PREFECT_API_KEY)"
        clear = (" — over plain http: put TLS in front of it (a reverse proxy) so the string is not sent in clear"
                 if parts.scheme == "http" and not _loopback(host) else "")
        return ServerAccess("authenticated", f"Prefect server {api_url}: authenticated with {how}{clear}")
    if _loopback(host):
        return ServerAccess("open-loopback", f"Prefect server {api_url or '(temporary, local)'} is open (no auth string): "
                                             "fine on loopback for the demo, but anyone on this machine can trigger "
                                             "runs and answer approvals; `upkeep sandbox up --engine postgres` starts "
                                             "an authenticated one")
    return ServerAccess("refused", f"PREFECT_API_URL {api_url} is not on this machine and no auth is set: anyone who "
                                   "reaches it could restart, update or restore production. Give the server an auth "
                                   "string (PREFECT_SERVER_API_AUTH_STRING, from a secret) and set the same in "
                                   "PREFECT_API_AUTH_STRING here (e.g. from a file only this user reads), or "
                                   "PREFECT_API_KEY for Prefect Cloud")
