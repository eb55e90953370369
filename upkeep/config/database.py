"""The database maintenance routine's configuration (`environments.<env>.database_maintenance`)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from upkeep.config.units import Duration, Size

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_COLLECTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,119}$")
_QUERY_OPERATORS = {  # what a stale-data filter may use: comparisons and logic, never $where / $function / $expr
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$type", "$and", "$or", "$nor", "$not",
    "$regex", "$options", "$size", "$all", "$elemMatch",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_filter(value: Any, where: str = "filter") -> None:
    """A MongoDB filter made of field conditions and the operators in `_QUERY_OPERATORS`; ValueError naming
    the first thing that is not."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: key {k!r} is not a string")
            if k.startswith("$") and k not in _QUERY_OPERATORS:
                raise ValueError(f"{where}: operator {k} is not allowed here (use {', '.join(sorted(_QUERY_OPERATORS))})")
            if not k.startswith("$") and not _FIELD.match(k):
                raise ValueError(f"{where}: {k!r} is not a field name")
            check_filter(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_filter(v, f"{where}[{i}]")


class StaleDataRule(_Model):
    """Documents removed once older than `older_than` by `date_field`: archived to S3 first unless `archive: false`."""

    collection: str = Field(pattern=_COLLECTION.pattern, description="a collection of the database")
    date_field: str = Field(pattern=_FIELD.pattern, description="the date that ages a document (a BSON date)")
    older_than: Duration = Field(description="documents older than this are removed (more than zero)")
    filter: dict[str, Any] = Field(default_factory=dict, description="only documents that also match this filter")
    archive: bool = Field(True, description="archive to s3.archive first (false: delete only, e.g. expired sessions)")

    @field_validator("older_than")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("an age of zero would remove every document: give a positive duration such as 90d")
        return value

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_filter(value)
        return value


class CompactPolicy(_Model):
    min_free_share: float = Field(0.5, gt=0, le=1, description="compact when free storage is at least this share")
    min_free_bytes: Size = Field(256 * 2**20, description="... and at least this many bytes")


class DatabaseMaintenanceConfig(_Model):
    """The weekly database maintenance (the guide's Database Maintenance and Performance Optimization)."""

    database: str | None = Field(None, description="the database maintained (default: the first of mongodb.databases)")
    backup_max_age: Duration = Field(timedelta(days=1), description="a verified backup at most this old must exist "
                                     "before anything is deleted; else the backup routine runs first")
    stale_data: list[StaleDataRule] = Field(default_factory=list)
    batch: int = Field(1000, ge=1, le=100_000, description="documents deleted per delete_many")
    chunk_documents: int = Field(20_000, ge=100, le=1_000_000, description="documents per archived chunk")
    unused_index_age: Duration = Field(timedelta(days=7), description="no access for this long: an index is unused")
    protected_indexes: list[str] = Field(default_factory=list, description="never proposed: 'name', 'collection.name' "
                                         "or 'database.collection.name'")
    drop_unused: Literal["approve", "auto", "never"] = Field(
        "approve", description="unused indexes are hidden first; on a later run, still unused: dropped once approved "
                               "in the UI (approve), without asking (auto), or never")
    compact: CompactPolicy = CompactPolicy()
    validate_collections: bool = Field(True, description="run `validate` on each collection")
    profile_slow_ms: int | None = Field(None, ge=1, description="read system.profile's shapes slower than this "
                                        "(profiling must be on; default: not read)")

    @model_validator(mode="after")
    def _one_rule_per_collection(self) -> DatabaseMaintenanceConfig:
        seen: set[str] = set()
        for i, rule in enumerate(self.stale_data):
            if rule.collection in seen:
                raise ValueError(f"stale_data[{i}]: a second rule for {rule.collection}: merge them (one rule per collection)")
            seen.add(rule.collection)
        return self
