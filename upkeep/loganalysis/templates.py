"""Error messages reduced to templates: the variable parts masked, so that one bug is one pattern.

Vectorised (RE2 through pyarrow.compute) and meant for the error rows only, not every line of the day.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.compute as pc  # type: ignore[import-untyped]

#: (RE2 pattern, replacement), applied in this order. Quoted strings go first (what is quoted is data), then
#: the shapes that contain digits and punctuation (UUIDs, e-mail and IP addresses, file paths) before the
#: numbers and hex ids they would otherwise be cut into. A quote must follow a non-word character, so the
#: apostrophe of "can't" opens no string; numbers that stand alone (or with a short unit) are masked before hex ids, so an
#: all-digit id is `<num>` whatever its length and a hex id is `<hex>` from 8 characters (ObjectIds, digests).
MASKS: tuple[tuple[str, str], ...] = (
    (r"""(^|[^\w])(?:'[^']*'|"[^"]*")""", r"\1<str>"),
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<uuid>"),
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "<email>"),
    (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b", "<ip>"),
    (r"(^|[\s=:(\[,])(?:/[\w.@+-]+)+/?", r"\1<path>"),
    (r"\b\d+(?:\.\d+)?([a-zA-Z]{1,3})?\b", r"<num>\1"),  # a unit stays: 3.5s → <num>s, 250ms → <num>ms
    (r"\b(?:0[xX][0-9a-fA-F]+|[0-9a-fA-F]{8,})\b", "<hex>"),
    (r"\d+", "<num>"),
)
MAX_TEMPLATE = 200  # characters kept of a template (a stack trace in a message is not a pattern)


def mask(messages: Any) -> Any:
    """The templates of an Arrow string array (or chunked array) of messages, as an Arrow string array."""
    # one array: pyarrow sets a regex up again for every chunk, which costs more than matching a few messages
    out = messages.combine_chunks() if isinstance(messages, pa.ChunkedArray) else messages
    for pattern, replacement in MASKS:
        out = pc.replace_substring_regex(out, pattern=pattern, replacement=replacement)
    return pc.utf8_slice_codeunits(out, 0, MAX_TEMPLATE)


def templates(messages: pd.Series | Sequence[str]) -> pd.Series:
    """The template of each message (missing messages stay missing), e.g.
    'timeout after 3000 ms on 10.0.0.5:27017' → 'timeout after <num> ms on <ip>'."""
    values = messages.astype(pd.ArrowDtype(pa.string())) if isinstance(messages, pd.Series) else list(messages)
    result = pd.Series(mask(pa.array(values, type=pa.string())), dtype=pd.ArrowDtype(pa.string()))
    if isinstance(messages, pd.Series):
        result.index = messages.index
    return result
