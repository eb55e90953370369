"""Security tools' outputs and a vulnerability feed parsed into exact findings (recorded outputs in the tools'
documented formats); malformed input is a clear error."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from upkeep.security.sources import (
    SecurityInputError,
    affecting,
    debian_version_compare,
    debian_vulnerabilities,
    dpkg_sources,
    index_feed,
    npm_audit,
    pip_audit,
)

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "security"


def text(name: str) -> str:
    return (FIX / name).read_text()


def test_npm_audit() -> None:
    found = {f.key: f for f in npm_audit(text("npm-audit.json"), "host1", "/srv/app")}
    assert sorted(found) == ["/srv/app lodash GHSA-35jh-r3h4-6jhm", "/srv/app lodash GHSA-p6mc-m468-83gw",
                             "/srv/app send GHSA-m6fv-jmcg-4jfg"]  # express is vulnerable only through send: reported there
    lodash = found["/srv/app lodash GHSA-p6mc-m468-83gw"]
    assert (lodash.severity, lodash.fix) == ("high", "npm audit fix")
    assert lodash.title == "lodash <4.17.19: Prototype Pollution in lodash"
    assert found["/srv/app send GHSA-m6fv-jmcg-4jfg"].fix == "upgrade express to 4.21.2"
    assert "transitive" in found["/srv/app send GHSA-m6fv-jmcg-4jfg"].detail


def test_pip_audit() -> None:
    found = pip_audit(text("pip-audit.json"), "host1", "/srv/tools")
    assert [(f.key, f.fix) for f in found] == [("/srv/tools jinja2 GHSA-h5c8-rqwp-cp95", "upgrade jinja2 to 3.1.3"),
                                               ("/srv/tools urllib3 GHSA-34jh-p97f-mpxf", "upgrade urllib3 to 1.26.19")]
    assert found[0].title == "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (CVE-2024-22195)"


def test_installed_debian_packages_against_an_osv_feed() -> None:
    found = {f.key: f for f in debian_vulnerabilities(text("dpkg-status"), json.loads(text("osv-debian.json")), "db-1")}
    # curl is already fixed (deb12u8 > deb12u6), sudo is not installed (config-files), Debian:11 is not this release
    assert sorted(found) == ["libssl3 DSA-5900-1", "openssl DSA-5764-1"]
    openssl = found["openssl DSA-5764-1"]  # the advisory names the source package; both its binaries are installed
    assert openssl.title == "openssl 3.0.14-1~deb12u1 (libssl3, openssl): CVE-2024-5535, CVE-2024-6119"
    assert openssl.fix == "install openssl 3.0.14-1~deb12u2 (security-patches)" and openssl.severity == "medium"
    assert found["libssl3 DSA-5900-1"].severity == "critical"


def test_advisories_name_source_packages_and_the_hosts_install_binaries() -> None:
    status = ("Package: libssl3\nStatus: install ok installed\nVersion: 3.0.14-1~deb12u1\nSource: openssl\n\n"
              "Package: libcurl4\nStatus: install ok installed\nVersion: 7.88.1-10+deb12u8\nSource: curl (7.88.1-10+deb12u8)\n")
    assert dpkg_sources(status) == {"libssl3": ("3.0.14-1~deb12u1", ("libssl3",)), "openssl": ("3.0.14-1~deb12u1", ("libssl3",)),
                                    "libcurl4": ("7.88.1-10+deb12u8", ("libcurl4",)),
                                    "curl": ("7.88.1-10+deb12u8", ("libcurl4",))}
    index = index_feed(json.loads(text("osv-debian.json")))
    assert sorted(index) == ["curl", "libssl3", "openssl", "sudo"]  # Debian:11's libssl3 range left out
    found = {f.key: f.title for f in debian_vulnerabilities(status, index, "web-1")}  # no openssl binary installed
    assert found == {"openssl DSA-5764-1": "openssl 3.0.14-1~deb12u1 (libssl3): CVE-2024-5535, CVE-2024-6119",
                     "libssl3 DSA-5900-1": "libssl3 3.0.14-1~deb12u1: CVE-2025-0001"}
    assert [a.id for a in affecting(index, ["openssl", "libssl3"], "3.0.14-1~deb12u1")] == ["DSA-5764-1", "DSA-5900-1"]
    assert affecting(index, ["openssl"], "3.0.14-1~deb12u2") == []  # the fixed version


@pytest.mark.parametrize(("a", "b"), [
    ("1.0", "1.0-1"), ("1.0~rc1", "1.0"), ("3.0.14-1~deb12u1", "3.0.14-1~deb12u2"), ("7.88.1-10+deb12u6", "7.88.1-10+deb12u8"),
    ("1:1.0", "2.0"), ("1.9.13p3-1", "1.9.13p3-1+deb12u1"), ("2.10", "2.9.9"), ("1.0a", "1.0b"), ("6.1.10", "6.1.9"),
])
def test_debian_version_order_agrees_with_dpkg(a: str, b: str) -> None:
    if not shutil.which("dpkg"):
        pytest.skip("dpkg is not installed")
    for x, y in ((a, b), (b, a), (a, a)):
        lt = subprocess.run(["dpkg", "--compare-versions", x, "lt", y], check=False).returncode == 0
        eq = subprocess.run(["dpkg", "--compare-versions", x, "eq", y], check=False).returncode == 0
        assert debian_version_compare(x, y) == (-1 if lt else 0 if eq else 1), (x, y)


@pytest.mark.parametrize(("parse", "bad", "says"), [
    (lambda t: npm_audit(t, "h", "/app"), "npm ERR! audit endpoint returned an error", "npm audit of /app: not JSON"),
    (lambda t: npm_audit(t, "h", "/app"), '{"advisories": {}}', "expected auditReportVersion 2"),
    (lambda t: pip_audit(t, "h", "/tools"), "[]", "expected an object with 'dependencies'"),
    (lambda t: debian_vulnerabilities("", json.loads(t), "h"), '[{"summary": "no id"}]', "an entry without id/affected"),
])
def test_malformed_input_is_a_clear_error(parse, bad: str, says: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SecurityInputError, match=says):
        parse(bad)
