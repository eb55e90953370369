"""The reviews' configuration (`environments.<env>.reviews`): the weekly performance review, the monthly capacity
review, documentation and configuration checks and the guides' manual items, the quarterly infrastructure review,
the daily support-queue check. Every field has a default that works on a fresh inventory.

URLs and paths on a host are rendered with the host's variables (`{root}`, `{name}`, `{address}`, upkeep.config.render).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from upkeep.config.secrets import SecretRef
from upkeep.config.units import Duration, Size


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PerformanceReview(_Model):
    """Week over week: latency per route, error rate, throughput, host trends, memory leaks, the database cache."""

    regression_factor: float = Field(1.25, gt=1, description="a route's p95 or p99 this many times last week's is a "
                                                               "finding (default: 1.25)")
    min_requests: int = Field(100, ge=1, description="requests a route needs in both weeks to be compared")
    cache_hit_min: float = Field(0.95, gt=0, le=1, description="the database cache's hit rate below this is a finding")
    leak_alpha: float = Field(0.01, gt=0, lt=0.5, description="Mann–Kendall significance a rising memory floor needs")
    leak_min_growth: Size = Field(1 << 20, ge=1, description="bytes per hour a memory floor must rise by to count "
                                                             "(default: 1MiB)")


class CapacityReview(_Model):
    """Days until full from a robust slope over daily maxima (not a 6-hour linear fit: nightly bursts are not trends)."""

    history: Duration = Field(timedelta(days=28), description="how far back the daily maxima reach (default: 28d; the "
                                                              "health samples are kept 30 days)")
    min_days: int = Field(7, ge=3, description="days of data a forecast needs (fewer: 'insufficient data')")
    warn_days: int = Field(30, ge=1, description="full within this many days: a warning")
    critical_days: int = Field(7, ge=1, description="full within this many days: critical")
    peak_percent: float = Field(80.0, gt=0, le=100, description="a weekly CPU or memory peak at or above this is "
                                                                 "too little headroom")
    database_limit: Size | None = Field(None, description="the database's storage limit (default: none: its growth "
                                                          "is reported, not a date)")


class InfrastructureReview(_Model):
    """Inventory drift and operating-system end of life."""

    distro_info: str | None = Field(None, description="a distro-info CSV on the machine running Upkeep (default: "
                                                      "/usr/share/distro-info/<os id>.csv from distro-info-data)")
    eol_warn: Duration = Field(timedelta(days=180), description="end of life within this: a warning")


class DocumentationCheck(_Model):
    """The Event Editor's documentation items, checked (never edited): API description, changelog, links."""

    service: str = Field("api", description="the service whose first host the URLs are rendered for")
    api_description: str | None = Field(None, description="URL of the OpenAPI description, e.g. "
                                                          "http://{address}:8080/openapi.json")
    changelog: str | None = Field(None, description="URL of the changelog (Keep a Changelog headings)")
    links: list[str] = Field(default_factory=list, description="documentation URLs that must resolve")
    timeout: Duration = Field(timedelta(seconds=10), description="per request (default: 10s)")

    @field_validator("links")
    @classmethod
    def _urls(cls, links: list[str]) -> list[str]:
        for i, url in enumerate(links):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"links[{i}] {url!r} is not an http(s) URL")
        return links


class ConfigurationReview(_Model):
    """The live hosts' configuration files against the last approved copy (SHA-256 of each)."""

    files: list[str] = Field(default_factory=list, description="absolute paths on the hosts (rendered per host)")
    roles: list[str] = Field(default_factory=list, description="only hosts with one of these roles (default: all)")
    become: bool = Field(False, description="read them through the environment's become")

    @field_validator("files")
    @classmethod
    def _absolute(cls, files: list[str]) -> list[str]:
        for i, path in enumerate(files):
            if not path.startswith(("/", "{")):
                raise ValueError(f"files[{i}] {path!r} must be an absolute path (or start with a variable such as {{root}})")
        return files


Priority = Literal["critical", "high", "normal", "low"]
_DEFAULT_SLA: dict[Priority, timedelta] = {"critical": timedelta(hours=4), "high": timedelta(hours=24)}


class SupportQueue(_Model):
    """The helpdesk's open tickets (User Support): an HTTP JSON source, critical tickets over their SLA."""

    url: str = Field(description="returns the tickets as JSON: a list, or {tickets: [...]} / {data: [...]}")
    token: SecretRef | None = Field(None, description="bearer token, from env: or block: (never inline)")
    sla: dict[Priority, Duration] = Field(
        default_factory=lambda: dict(_DEFAULT_SLA),
        description="how long an open ticket of each priority may wait (default: critical 4h, high 24h)")
    timeout: Duration = Field(timedelta(seconds=10), description="for the request (default: 10s)")

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url


class ManualItem(_Model):
    """A guide item software cannot do: listed with its owner in the monthly report, so none is silently dropped."""

    item: str = Field(min_length=3)
    owner: str = Field(min_length=1, description="who does it (a person or team)")
    guide: str = Field("", description="where the guide asks for it")


GUIDE_MANUAL_ITEMS: tuple[ManualItem, ...] = (
    ManualItem(item="Update user guides, FAQs, tutorials and help content", owner="unassigned",
               guide="Event Editor: Documentation Maintenance, User Documentation"),
    ManualItem(item="Train staff on changed procedures", owner="unassigned", guide="Event Editor: Monthly Tasks"),
    ManualItem(item="Review user feedback and track common problems", owner="unassigned",
               guide="Event Editor: Daily Tasks, User Support"),
    ManualItem(item="Update the backup strategy and document procedures", owner="unassigned",
               guide="Event Editor: Monthly Tasks, Backup Verification"),
)


class ReviewsConfig(_Model):
    performance: PerformanceReview = PerformanceReview()
    capacity: CapacityReview = CapacityReview()
    infrastructure: InfrastructureReview = InfrastructureReview()
    documentation: DocumentationCheck = DocumentationCheck()
    configuration: ConfigurationReview = ConfigurationReview()
    support: SupportQueue | None = Field(None, description="the support-queue check (default: none: reported as not "
                                                           "configured)")
    manual: list[ManualItem] = Field(default_factory=lambda: list(GUIDE_MANUAL_ITEMS),
                                     description="what people do, listed with an owner in the monthly report (default: "
                                                 "the guides' items, owner 'unassigned')")
    charts: bool = Field(True, description="PNG charts on the run's page (stored beside the reports in S3)")
