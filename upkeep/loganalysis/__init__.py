"""Daily log analysis ("Log Analysis" of the ops guide): a day of the application's logs, streamed from
compressed archives, reduced to error patterns, latencies, security findings and usage, and compared with
the stored summaries of the days before. Pure: no Prefect, no S3; the flow hands in the bytes."""

from upkeep.loganalysis.accumulate import Totals
from upkeep.loganalysis.analysis import Analysis, AnalysisSettings, analyse
from upkeep.loganalysis.reader import (
    Compression,
    LogFormat,
    decompressed_chunks,
    derive_routes,
    line_batches,
    parse_json_batch,
    parse_nginx_batch,
)
from upkeep.loganalysis.templates import templates

__all__ = [
    "Analysis", "AnalysisSettings", "Compression", "LogFormat", "Totals", "analyse", "decompressed_chunks",
    "derive_routes", "line_batches", "parse_json_batch", "parse_nginx_batch", "templates",
]
