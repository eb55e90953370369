"""The infrastructure review (pure): host facts, snapshots and their drift, OS end of life from distro-info-data."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from upkeep.reviews import infrastructure as infra
from upkeep.reviews.eol import default_file, eol_status, read_distro_info
from upkeep.reviews.infrastructure import FACTS_ARGV, HostFacts, Snapshot, drift, drift_within, parse_facts, snapshot

TODAY = date(2026, 12, 6)
DEBIAN = "/usr/share/distro-info/debian.csv"
UBUNTU_OUTPUT = """upkeep-facts 1
NAME="Ubuntu"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 22.04.4 LTS"
VERSION_ID="22.04"
UBUNTU_CODENAME=jammy
--
5.15.0-105-generic
--
aarch64
--
"""


# -- end of life ----------------------------------------------------------------------------------
def test_debian_releases_from_the_real_distro_info_file() -> None:
    releases = read_distro_info(DEBIAN)
    bookworm = next(r for r in releases if r.series == "bookworm")
    assert (bookworm.version, bookworm.eol, bookworm.extended) == (
        "12", date(2026, 7, 11), (("LTS", date(2028, 6, 30)), ("ELTS", date(2033, 6, 30))))
    assert next(r for r in releases if r.series == "sid").eol is None  # a missing date is None
    assert default_file("debian") == DEBIAN and default_file("Ubuntu") == "/usr/share/distro-info/ubuntu.csv"
    with pytest.raises(ValueError, match="'rocky'.*debian and ubuntu only"):
        default_file("rocky")


def test_bookworm_supported_in_january_and_past_end_of_life_under_lts_in_december() -> None:
    releases = read_distro_info(DEBIAN)
    jan = eol_status("debian", "12", "bookworm", releases, date(2026, 1, 1))
    assert jan.state == "supported" and jan.days == 191
    assert jan.describe() == "Debian 12 (bookworm) is supported until 2026-07-11 (in 191 days)."
    dec = eol_status("debian", "12", "bookworm", releases, TODAY)  # the file's eol is 2026-07-11: past on 2026-12-06
    assert dec.state == "end of life" and dec.days == -148 and dec.covered == ("LTS", date(2028, 6, 30))
    assert dec.describe() == ("Debian 12 (bookworm) reached end of life on 2026-07-11, 148 days ago; "
                              "LTS still covers it until 2028-06-30 (in 572 days).")
    assert dec.brief() == "ended 2026-07-11; LTS to 2028-06-30"


def test_buster_past_end_of_life_and_lts_with_elts_left_then_nothing() -> None:
    releases = read_distro_info(DEBIAN)
    buster = eol_status("debian", "10", "", releases, TODAY)  # no codename: matched by version
    assert buster.state == "end of life" and buster.covered == ("ELTS", date(2029, 6, 30))
    assert buster.describe() == ("Debian 10 (buster) reached end of life on 2022-09-10, 1,548 days ago; "
                                 "LTS ended 2024-06-30; ELTS still covers it until 2029-06-30 (in 937 days).")
    later = eol_status("debian", "10", "buster", releases, date(2030, 1, 1))
    assert later.covered is None and later.describe().endswith("ELTS ended 2029-06-30; nothing covers it any more.")


def test_unknown_releases_name_the_file() -> None:
    releases = read_distro_info(DEBIAN)
    made_up = eol_status("debian", "99", "zorro", releases, TODAY)
    assert made_up.state == "unknown release" and made_up.brief() == "unknown"
    assert made_up.describe().startswith(f"debian 99 (zorro) is not in {DEBIAN}: update distro-info-data")
    assert eol_status("ubuntu", "22.04", "jammy", releases, TODAY).state == "unknown release"  # debian's file
    assert eol_status("unknown", "unknown", "unknown", releases, TODAY).state == "unknown release"


def test_ubuntu_lts_matched_by_series_with_esm_after_eol() -> None:
    ubuntu = read_distro_info("/usr/share/distro-info/ubuntu.csv")
    s = eol_status("ubuntu", "22.04", "jammy", ubuntu, TODAY)
    assert s.release is not None and s.release.lts and s.release.name() == "Ubuntu 22.04 LTS (jammy)"
    assert s.state == "near end of life" and s.release.eol == date(2027, 6, 1) and s.days == 177
    assert "ESM then covers it until" in s.describe()


def test_near_end_of_life_from_a_tiny_file(tmp_path: Path) -> None:
    csv = tmp_path / "debian.csv"
    csv.write_text("version,codename,series,created,release,eol,eol-lts,eol-elts\n"
                   "20,Zeta,zeta,2025-01-01,2025-06-01,2027-01-16,2029-01-01\n30,Eta,eta,2026-01-01,,\n")
    releases = read_distro_info(csv)
    s = eol_status("debian", "20", "zeta", releases, TODAY)
    assert s.state == "near end of life" and s.days == 41 and s.brief() == "in 41 d (2027-01-16)"
    assert s.describe() == ("Debian 20 (zeta) reaches end of life on 2027-01-16, in 41 days; "
                            "LTS then covers it until 2029-01-01 (in 757 days).")
    assert eol_status("debian", "20", "zeta", releases, TODAY, warn=TODAY - TODAY).state == "supported"
    assert eol_status("raspbian", "30", "eta", releases, TODAY).describe().startswith("Debian 30 (eta) has no end-of-life")


def test_a_file_that_is_not_distro_info_says_what_to_install(tmp_path: Path) -> None:
    bad = tmp_path / "debian.csv"
    bad.write_text("name,eol\nbookworm,2026-07-11\n")
    with pytest.raises(ValueError, match=f"{bad} is not a distro-info CSV.*distro-info-data"):
        read_distro_info(bad)
    with pytest.raises(ValueError, match="cannot read the distro-info file .*missing.csv.*configured path"):
        read_distro_info(tmp_path / "missing.csv")
    bad.write_text("version,codename,series,created,release,eol\n12,Bookworm,bookworm,2021-08-14,2023-06-10,soon\n")
    with pytest.raises(ValueError, match="line 2: column eol is 'soon'"):
        read_distro_info(bad)


# -- facts ----------------------------------------------------------------------------------------
def test_facts_of_this_machine() -> None:
    output = subprocess.run(FACTS_ARGV, capture_output=True, text=True, check=True, timeout=5).stdout
    facts = parse_facts("local", output)
    release = platform.freedesktop_os_release()
    assert (facts.os_id, facts.version_id, facts.pretty_name) == (release["ID"], release.get("VERSION_ID", "unknown"),
                                                                  release["PRETTY_NAME"])
    assert (facts.kernel, facts.arch) == (platform.release(), platform.machine())
    assert facts.uptime_seconds is not None and facts.uptime_seconds > 0


def test_ubuntu_facts_and_missing_fields() -> None:
    facts = parse_facts("web-9", UBUNTU_OUTPUT)
    assert facts == HostFacts("web-9", "ubuntu", "22.04", "jammy", "Ubuntu 22.04.4 LTS", "5.15.0-105-generic", "aarch64")
    bare = parse_facts("web-8", "upkeep-facts 1\nID=debian\nbroken line\n--\n6.1.0\n")  # cut short
    assert (bare.os_id, bare.version_id, bare.codename, bare.pretty_name, bare.kernel, bare.arch) == (
        "debian", "unknown", "unknown", "unknown", "6.1.0", "unknown")
    assert bare.describe() == "web-8: unknown, kernel 6.1.0 (unknown)"


def test_output_of_another_command_names_the_host() -> None:
    with pytest.raises(ValueError, match="web-7: the output is not FACTS_ARGV's .*'Linux web-7"):
        parse_facts("web-7", "Linux web-7 6.1.0\n")
    with pytest.raises(ValueError, match="web-7"):
        parse_facts("web-7", "")


# -- snapshots and drift --------------------------------------------------------------------------
def _facts(host: str, kernel: str, version: str = "12", codename: str = "bookworm") -> HostFacts:
    return HostFacts(host, "debian", version, codename, f"Debian GNU/Linux {version} ({codename})", kernel, "x86_64")


CERT = {"target": "web-1:443", "not_after": "2026-12-20T00:00:00+00:00", "fingerprint": "aa" * 16, "issuer": "R11"}


@pytest.fixture
def quarter() -> tuple[Snapshot, Snapshot]:
    inventory = {"web-1": ("10.0.0.1", ["web"]), "web-2": ("10.0.0.2", ["web"]), "db-1": ("10.0.0.5", ["db"]),
                 "old-1": ("10.0.0.9", ["batch"])}
    before = snapshot("production", datetime(2026, 9, 6, 3, 0, tzinfo=UTC), inventory,
                      {h: _facts(h, "6.1.0-21-amd64") for h in inventory},
                      {"web-1/nginx": "1.22.1", "web-2/nginx": "1.22.1", "db-1/postgres": "15.4"},
                      {"api.example.org": CERT})
    inventory = {k: v for k, v in inventory.items() if k != "old-1"} | {"web-3": ("10.0.0.3", ["web"])}
    renewed = CERT | {"not_after": "2027-03-20T00:00:00+00:00", "fingerprint": "bb" * 16}
    now = snapshot("production", datetime(2026, 12, 6, 3, 0, tzinfo=UTC), inventory,
                   {"web-1": _facts("web-1", "6.1.0-25-amd64"), "web-2": "timed out after 10 s",
                    "db-1": _facts("db-1", "6.1.0-21-amd64"), "web-3": _facts("web-3", "6.1.0-21-amd64")},
                   {"web-1/nginx": "1.22.1", "web-2/nginx": "unknown", "web-3/nginx": "1.22.1", "db-1/postgres": "15.6"},
                   {"api.example.org": renewed})
    return before, now


def test_snapshot_round_trips_through_json(quarter: tuple[Snapshot, Snapshot]) -> None:
    _, now = quarter
    assert Snapshot.from_json(json.loads(json.dumps(now.to_json()))) == now
    assert now.hosts["web-2"]["error"] == "timed out after 10 s" and now.hosts["web-2"]["kernel"] == "unknown"
    assert not now.reachable("web-2") and now.reachable("web-1")
    with pytest.raises(ValueError, match="not a stored infrastructure snapshot.*Snapshot.to_json"):
        Snapshot.from_json({"environment": "production"})
    with pytest.raises(ValueError, match="facts for ghost-1, which the inventory"):
        snapshot("production", now.taken_at, {}, {"ghost-1": "x"}, {}, {})


def test_drift_since_last_quarter_leaves_the_unreachable_host_alone(quarter: tuple[Snapshot, Snapshot]) -> None:
    before, now = quarter
    changes = drift(before, now)
    assert [(c.kind, c.subject) for c in changes] == [
        ("host added", "web-3"), ("host removed", "old-1"), ("kernel changed", "web-1"),
        ("service version changed", "db-1/postgres"), ("certificate renewed", "certificate api.example.org")]
    assert not any(c.subject.startswith("web-2") for c in changes)  # unreachable: neither removed nor changed
    assert changes[2].describe() == "web-1: kernel changed from 6.1.0-21-amd64 to 6.1.0-25-amd64"
    assert changes[4].describe() == ("certificate api.example.org renewed: web-1:443, expires 2027-03-20, issuer R11, "
                                     "sha256 bbbbbbbb… (was web-1:443, expires 2026-12-20, issuer R11, sha256 aaaaaaaa…)")
    assert drift(None, now) == [] and drift(now, now) == []


def test_drift_within_the_snapshot_kernels_of_one_role(quarter: tuple[Snapshot, Snapshot]) -> None:
    _, now = quarter
    within = drift_within(now)
    assert within == [infra.Change("kernels differ", "role web", "6.1.0-21-amd64 on web-3", "6.1.0-25-amd64 on web-1")]
    assert within[0].describe() == "role web runs 2 kernels: 6.1.0-21-amd64 on web-3; 6.1.0-25-amd64 on web-1"
    versions = Snapshot(now.taken_at, "x", now.hosts, {"web-1/nginx": "1.22.1", "web-3/nginx": "1.24.0"})
    assert drift_within(versions)[-1].kind == "service versions differ"


def test_findings_and_the_report(quarter: tuple[Snapshot, Snapshot]) -> None:
    before, now = quarter
    changes, within = drift(before, now), drift_within(now)
    releases = read_distro_info(DEBIAN)
    eol = {h: eol_status(v["os_id"], v["version_id"], v["codename"], releases, TODAY) for h, v in now.hosts.items()}
    found = infra.findings(changes, within, eol)
    assert [(f.level, f.subject) for f in found][:2] == [("warning", "db-1"), ("warning", "old-1")]
    assert [f.title for f in found if f.subject == "web-2"] == [
        "The OS release is unknown (host not reached, or no /etc/os-release): end of life unknown."]
    assert ("info", "role web") in [(f.level, f.subject) for f in found]
    text = infra.markdown(now, before, changes, within, eol)
    assert ("4 hosts on 1 OS release (1 not reached); 5 changes since the review of 2026-09-06; "
            "3 hosts past end of life (3 still under extended support); end of life unknown for 1 host.") in text
    assert "| web-2 | 10.0.0.2 | web | not reached: timed out after 10 s | unknown | nginx unknown | unknown |" in text
    assert "| api.example.org | web-1:443 | 2027-03-20 (in 104 days) | R11 |" in text
    assert "Snapshot(" not in text and "HostFacts(" not in text
    first = infra.markdown(now, None, [], within, {})
    assert "first review: this snapshot is the baseline" in first and "### Changes since" not in first
