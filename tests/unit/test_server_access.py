"""Which Prefect servers Upkeep serves against: a remote one only with an auth string (or Cloud's API key), a
loopback one open but said to be open."""

from __future__ import annotations

import pytest

from upkeep.decisions.server_access import server_access


@pytest.mark.parametrize("url", [None, "http://127.0.0.1:4200/api", "http://localhost:4200/api", "http://[::1]:4200/api",
                                 "http://127.0.0.5:4200/api"])
def test_a_loopback_server_may_stay_open_and_is_said_to_be(url: str | None) -> None:
    access = server_access(url, auth_string=False, api_key=False)
    assert access.access == "open-loopback" and "is open (no auth string)" in access.message


@pytest.mark.parametrize("url", ["http://10.20.0.5:4200/api", "https://prefect.internal/api", "http://0.0.0.0:4200/api"])
def test_a_server_others_reach_without_auth_is_refused_with_the_fix(url: str) -> None:
    access = server_access(url, auth_string=False, api_key=False)
    assert access.access == "refused"
    assert "PREFECT_SERVER_API_AUTH_STRING" in access.message and "PREFECT_API_AUTH_STRING" in access.message


def test_auth_is_accepted_and_plain_http_to_another_machine_is_warned_about() -> None:
    assert server_access("https://prefect.internal/api", auth_string=True, api_key=False).access == "authenticated"
    clear = server_access("http://10.20.0.5:4200/api", auth_string=True, api_key=False).message
    assert "plain http" in clear
    assert "plain http" not in server_access("http://127.0.0.1:4200/api", auth_string=True, api_key=False).message
    assert "PREFECT_API_KEY" in server_access("https://api.prefect.cloud/api/accounts/a/workspaces/w", auth_string=False,
                                              api_key=True).message


def test_upkeep_serve_refuses_a_remote_server_without_auth_before_serving_anything() -> None:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from deployments.serve import check_server_access
    from upkeep.errors import ConfigError

    with temporary_settings(updates={PREFECT_API_URL: "http://10.20.0.5:4200/api"}, set_defaults={
            PREFECT_API_AUTH_STRING: None}), pytest.raises(ConfigError, match="not on this machine"):
        check_server_access()
    with temporary_settings(updates={PREFECT_API_URL: "https://prefect.internal/api",
                                     PREFECT_API_AUTH_STRING: "upkeep:from-a-secret"}):
        check_server_access()  # authenticated: serves
