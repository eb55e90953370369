"""A local apt repository and isolated apt/dpkg roots, for running real apt in tests without touching
the machine's own packages.

The repository (`file:` URL, `[trusted=yes]`) has two suites, `stable` and `stable-security`, each
with a signed-off Release file (hashes, no signature) so apt reports the suite an update comes from.
Packages (`Architecture: all`, one file each, no maintainer scripts): `em-tool` 1.0 → 1.1 in stable
and 1.2 in stable-security; `em-agent` 1.0 → 2.0 (a major bump); `linux-image-em` 6.1.10 → 6.1.11 (a
kernel). A root is a directory tree apt and dpkg are pointed at by `upkeep.packages.apt` options
(`Dir=…`, `--admindir`, `--instdir`): apt-get runs as an unprivileged user there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUITES: dict[str, list[tuple[str, str]]] = {
    "stable": [("em-tool", "1.0"), ("em-tool", "1.1"), ("em-agent", "1.0"), ("em-agent", "2.0"),
               ("linux-image-em", "6.1.10"), ("linux-image-em", "6.1.11")],
    "stable-security": [("em-tool", "1.2")],
}
# the demo's: only updates the policy applies without an approval (a triggered system update goes through)
DEMO_SUITES: dict[str, list[tuple[str, str]]] = {
    "stable": [("em-tool", "1.0"), ("em-tool", "1.1"), ("em-agent", "1.0"), ("linux-image-em", "6.1.10")],
    "stable-security": [("em-tool", "1.2")],
}
INSTALLED = {"em-tool": "1.0", "em-agent": "1.0", "linux-image-em": "6.1.10"}  # what a fresh root starts with


@dataclass(frozen=True)
class Repo:
    path: Path
    suites: tuple[str, ...] = tuple(SUITES)

    @property
    def source_line(self) -> str:
        return "\n".join(f"deb [trusted=yes] file:{self.path} {suite} main" for suite in self.suites) + "\n"

    def deb(self, name: str, version: str) -> Path:
        return self.path / "pool" / f"{name}_{version}_all.deb"


def _build_deb(name: str, version: str, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "pkg"
        (root / "DEBIAN").mkdir(parents=True)
        (root / "usr" / "share" / name).mkdir(parents=True)
        (root / "usr" / "share" / name / "VERSION").write_text(f"{name} {version}\n")
        (root / "DEBIAN" / "control").write_text(
            f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: Upkeep sandbox <ops@example.org>\n"
            f"Section: misc\nPriority: optional\nDescription: {name}, an Upkeep test package\n")
        subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(root), str(out)], check=True, capture_output=True)


def _stanza(deb: Path, repo: Path) -> str:
    control = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True).stdout.strip()
    data = deb.read_bytes()
    return (f"{control}\nFilename: {deb.relative_to(repo)}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")  # noqa: S324 - apt's index field


def build_repo(path: Path, suites: dict[str, list[tuple[str, str]]] = SUITES) -> Repo:
    """The repository of `suites` at `path` (built once; reused when it is there)."""
    repo = Repo(path, tuple(suites))
    if (path / "dists" / "stable-security" / "Release").exists():
        return repo
    (path / "pool").mkdir(parents=True, exist_ok=True)
    for suite, packages in suites.items():
        for name, version in packages:
            if not repo.deb(name, version).exists():
                _build_deb(name, version, repo.deb(name, version))
        index = "\n".join(_stanza(repo.deb(n, v), path) for n, v in packages).encode()
        files = []
        for arch in ("all", "amd64"):
            rel = f"main/binary-{arch}/Packages"
            target = path / "dists" / suite / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(index)
            files.append(f" {hashlib.sha256(index).hexdigest()} {len(index)} {rel}")
        (path / "dists" / suite / "Release").write_text(
            f"Origin: Upkeep\nLabel: Upkeep sandbox\nSuite: {suite}\nCodename: {suite}\nComponents: main\n"
            "Architectures: all amd64\nDate: Sun, 06 Dec 2026 00:00:00 UTC\nSHA256:\n" + "\n".join(files) + "\n")
    os.chmod(path, 0o755)
    return repo


def make_root(root: Path, repo: Repo, owner: tuple[int, int] | None = None) -> Path:
    """An apt/dpkg root using only `repo`, with `INSTALLED` installed by `dpkg -i` into it (on an existing
    root a reset: the first versions replace newer ones)."""
    for d in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d", "var/lib/dpkg/updates",
              "var/lib/dpkg/info", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/log/apt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
        (root / f).touch()
    (root / "etc/apt/sources.list").write_text(repo.source_line)
    for old in (root / "var/lib/apt/lists").glob("*"):  # lists of another repository: the next refresh reads this one
        if old.is_file():
            old.unlink()
    debs = [str(repo.deb(n, v)) for n, v in INSTALLED.items()]
    subprocess.run(["dpkg", f"--admindir={root}/var/lib/dpkg", f"--instdir={root}", "--force-script-chrootless",
                    "--force-not-root", f"--log={root}/var/log/dpkg.log", "-i", *debs], check=True, capture_output=True)
    if owner is not None:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), *owner)
        os.chown(root, *owner)
    return root
