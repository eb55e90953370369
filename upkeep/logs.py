"""Reading application log lines (JSON lines or plain text), pure."""

from __future__ import annotations

import json


def errors_in(lines: list[str]) -> list[str]:
    """The lines that record an error: JSON with level error/fatal, or text mentioning ERROR."""
    out = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        try:
            record = json.loads(text)
        except ValueError:
            if "ERROR" in text or "FATAL" in text:
                out.append(text)
            continue
        if isinstance(record, dict) and str(record.get("level", "")).lower() in ("error", "fatal", "critical"):
            out.append(text)
    return out
