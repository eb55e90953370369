"""Log rotation: lossless rename + reopen (or copytruncate), compression, S3 archive, retention."""

from upkeep.rotation.archive import LogArchive
from upkeep.rotation.engine import LogTarget, RotationOutcome, rotate_log

__all__ = ["LogArchive", "LogTarget", "RotationOutcome", "rotate_log"]
