"""Whether a renewal took effect (pure): the certificate observed after `renew` and `reload` must differ from the
one before (a renew command that did nothing, or a service that did not reload, serves the old one) and be sound."""

from __future__ import annotations

from upkeep.security.certcheck import CertResult


def renewal_outcome(before: CertResult, after: CertResult | None) -> tuple[bool, str]:
    """(took effect, why) for one renewed certificate."""
    if after is None or after.facts is None:
        return False, f"not readable after the renewal: {after.error if after else 'not checked'}"
    if before.facts is not None and after.facts.fingerprint == before.facts.fingerprint:
        return False, ("the same certificate is still served (fingerprint "
                       f"{after.facts.fingerprint[:16]}…): the renew command changed nothing, or the service did not reload")
    if after.verdict is not None and not after.verdict.ok:
        return False, f"a new certificate, but: {'; '.join(after.verdict.problems)}"
    return True, (f"new certificate until {after.facts.not_after:%Y-%m-%d} (was {before.facts.not_after:%Y-%m-%d})"
                  if before.facts else f"new certificate until {after.facts.not_after:%Y-%m-%d}")
