"""Operate the Event Manager stand-in from a host: `python3 standinctl.py URL ACTION [COMPONENT]`.

The sandbox inventory uses it as the services' start / stop / restart / clear-cache commands,
`reopen-logs` as the log rotation's reopen command (the stand-in runs as root: the login user cannot
send it SIGHUP), and `reload-tls` as a certificate's reload command (the stand-in re-reads its
certificate files; it answers an error naming the file when one is broken, and keeps the old ones).
The component is ignored by `reopen-logs` and `reload-tls`: the process has one log and one TLS directory.
Standard library only, so it runs with the host's own python3.
"""

import json
import sys
import urllib.error
import urllib.request

ACTIONS = {"start", "stop", "restart", "clear-cache", "reopen-logs", "reload-tls"}


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[1] not in ACTIONS:
        sys.stderr.write(f"usage: standinctl.py URL {{{','.join(sorted(ACTIONS))}}} [api|worker|all]\n")
        return 2
    url, action = argv[0].rstrip("/"), argv[1]
    body = json.dumps({"component": argv[2] if len(argv) == 3 else "all"}).encode()
    req = urllib.request.Request(f"{url}/_control/{action}", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - the stand-in's loopback URL
            sys.stdout.write(resp.read().decode() + "\n")
    except urllib.error.HTTPError as exc:  # the stand-in's answer says why (e.g. which certificate file is broken)
        with exc:
            detail = exc.read().decode(errors="replace").strip()
        sys.stderr.write(f"standinctl: {action} failed: HTTP {exc.code}: {detail}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"standinctl: {action} failed: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
