#!/usr/bin/env bash
# Installs the system packages and the user the sandbox needs (idempotent; needs root).
# UPKEEP_WITH_CHROMIUM=1: also chromium (the UI test); UPKEEP_WITH_BENCH=1: also the benchmarks' peers (logrotate,
# python3-apt for Ansible's apt module, lynis; ansible-core itself is the project's `bench` extra).
set -euo pipefail
need=()
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v zstd >/dev/null || need+=(zstd)  # the hosts compress rotated logs with it
command -v sudo >/dev/null || need+=(sudo)  # `become` (sudo -n) of the package commands
command -v dpkg-deb >/dev/null || need+=(dpkg)  # the local apt repository of the tests
command -v nft >/dev/null || need+=(nftables)  # the firewall review's test ruleset, in a namespace of its own
command -v ip >/dev/null || need+=(iproute2)
command -v node >/dev/null || need+=(nodejs)  # the application's npm dependencies (dependency-updates)
command -v npm >/dev/null || need+=(npm)  # (a nodejs that bundles npm, such as NodeSource's, is kept)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)  # Prefect's database of the scale-out stack
[ -f /usr/share/distro-info/debian.csv ] || need+=(distro-info-data)  # end-of-life dates (infrastructure review)
command -v setpriv >/dev/null || need+=(util-linux)  # runs PostgreSQL as the sandbox's user
if [ "${UPKEEP_WITH_CHROMIUM:-0}" = 1 ] && ! command -v chromium >/dev/null; then need+=(chromium); fi
# logrotate: only the log-rotation benchmark's peer (`make bench` sets UPKEEP_WITH_BENCH=1)
if [ "${UPKEEP_WITH_BENCH:-0}" = 1 ] && [ ! -x /usr/sbin/logrotate ]; then need+=(logrotate); fi
# lynis: the security-audit benchmark's peer (`lynis audit system --quick` on this machine)
if [ "${UPKEEP_WITH_BENCH:-0}" = 1 ] && ! command -v lynis >/dev/null; then need+=(lynis); fi
# the apt benchmark's peer: Ansible's apt module needs python3-apt on the targets (this machine's python3)
if [ "${UPKEEP_WITH_BENCH:-0}" = 1 ]; then
  /usr/bin/python3 -c 'import apt_pkg' 2>/dev/null || need+=(python3-apt)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "sandbox/setup.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's package enables and starts a system sshd on :22; the sandbox runs its own on 127.0.0.x.
mkdir -p /run/sshd
if ! id upkeep-sbx >/dev/null 2>&1; then
  # /bin/sh: no ~/.bashrc per command; '*' password: no password login, but not "locked" for sshd
  useradd --create-home --shell /bin/sh upkeep-sbx
  usermod -p '*' upkeep-sbx
fi
# sudo for the sandbox user only as itself (`become: {user: upkeep-sbx}` runs the real sudo path, no privilege
# gained); as root it has no sudoers line, so `become: {user: root}` shows sudo's refusal and its fix
if [ -d /etc/sudoers.d ] && [ ! -f /etc/sudoers.d/upkeep-sbx ]; then
  printf 'upkeep-sbx ALL=(upkeep-sbx) NOPASSWD: ALL\n' > /etc/sudoers.d/upkeep-sbx
  chmod 0440 /etc/sudoers.d/upkeep-sbx
fi
