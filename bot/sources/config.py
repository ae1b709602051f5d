"""Schema of `rules/sources.yaml`: the only place sources are defined."""

from __future__ import annotations

from typing import ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from bot.sources.redirects import RedirectPolicy

PriceProvider = Literal["yahoo", "cboe", "csv"]

DEFAULT_PRICE_URLS: dict[str, str] = {
    "yahoo": "https://query1.finance.yahoo.com/v8/finance/chart/{symbol}?range=1d&interval=5m",
    "cboe": "https://cdn.cboe.com/api/global/delayed_quotes/quotes/{cboe_symbol}.json",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Polled(_Strict):
    """The polling bounds every source shares: adaptive polling stays within them.

    `interval` is the budget (as many requests a day as fixed polling at it);
    `min_interval` is the floor (surges and busy hours), `max_interval` the ceiling
    (quiet hours, server hints). Defaults: a quarter of the interval (at least 15 s)
    and four times it (at most a day).
    """

    interval: int
    min_interval: int | None = Field(default=None, ge=5, le=86_400, description="floor, seconds")
    max_interval: int | None = Field(default=None, ge=5, le=86_400 * 7, description="ceiling, seconds")

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_interval is not None and self.min_interval > self.interval:
            raise ValueError(f"min_interval {self.min_interval} is above interval {self.interval}")
        if self.max_interval is not None and self.max_interval < self.interval:
            raise ValueError(f"max_interval {self.max_interval} is below interval {self.interval}")
        return self

    @property
    def floor(self) -> int:
        """The shortest interval ever used (surges, busy hours)."""
        if self.min_interval is not None:
            return self.min_interval
        return min(self.interval, max(15, self.interval // 4))

    @property
    def ceiling(self) -> int:
        """The longest interval adaptive polling or a freshness hint may choose."""
        if self.max_interval is not None:
            return self.max_interval
        return max(self.interval, min(86_400, self.interval * 4))

    def fetch_url(self) -> str:
        raise NotImplementedError

    @property
    def host(self) -> str:
        """The host polled (per-host budgets); "" when the URL cannot be resolved."""
        try:
            url = self.fetch_url()
            return (urlsplit(url).hostname or "").lower()
        except ValueError:
            return ""


class FeedSource(_Polled):
    """An RSS 2.0 / RSS 1.0 / Atom feed."""

    kind: ClassVar[Literal["feed"]] = "feed"
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    url: HttpUrl
    interval: int = Field(default=300, ge=5, le=86_400, description="seconds between polls on average (the request budget)")
    tags: tuple[str, ...] = ()
    enabled: bool = True
    name: str | None = None
    follow_redirects: RedirectPolicy = "same-host"  # "any": other hosts too (never internal ones)

    @property
    def source_id(self) -> str:
        """The source's identity (state, leases, logs): its `id`."""
        return self.id

    def fetch_url(self) -> str:
        return str(self.url)


class PriceSource(_Polled):
    """A price series from a keyless provider."""

    kind: ClassVar[Literal["price"]] = "price"
    symbol: str = Field(min_length=1, max_length=32)
    provider: PriceProvider
    url: str | None = None
    interval: int = Field(default=60, ge=5, le=86_400, description="seconds between polls on average (the request budget)")
    tags: tuple[str, ...] = ()
    enabled: bool = True
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.^=-]*$", max_length=64)
    column: str | None = None  # csv provider: value column (default: the second column)
    follow_redirects: RedirectPolicy = "same-host"  # "any": other hosts too (never internal ones)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return value

    @property
    def source_id(self) -> str:
        """The source's identity (state, leases, logs): its `id`, else `provider:symbol`."""
        return self.id or f"{self.provider}:{self.symbol}"

    def fetch_url(self) -> str:
        return self.resolved_url()

    def resolved_url(self) -> str:
        """The URL to poll, with `{symbol}` / `{cboe_symbol}` filled in."""
        template = self.url or DEFAULT_PRICE_URLS.get(self.provider)
        if template is None:
            raise ValueError(f"provider {self.provider!r} needs an explicit url")
        cboe_symbol = self.symbol.replace("^", "_")
        return template.replace("{symbol}", self.symbol).replace("{cboe_symbol}", cboe_symbol)


# Every source has `kind`, `source_id`, `interval`, `floor`, `ceiling`, `host`, `enabled`,
# `tags` and `fetch_url()`.
Source = FeedSource | PriceSource


class HostBudget(_Strict):
    """What one host gets from this bot, whatever the number of sources on it (surges too)."""

    requests_per_minute: float = Field(default=30.0, gt=0, le=6_000)
    connections: int = Field(default=2, ge=1, le=64, description="requests in flight at once")


DEFAULT_HOST = "*"  # `hosts:` key for the budget of every host not listed
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def is_local_host(host: str) -> bool:
    """This machine: the default budget does not apply (your own server), a listed one does."""
    host = host.lower()
    return host in LOCAL_HOSTS or host.startswith("127.")


class SourcesFile(_Strict):
    feeds: list[FeedSource] = []
    prices: list[PriceSource] = []
    hosts: dict[str, HostBudget] = {}

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: dict[str, HostBudget]) -> dict[str, HostBudget]:
        for name in value:
            if name != DEFAULT_HOST and ("/" in name or ":" in name or not name.strip()):
                raise ValueError(f"{name!r} is not a host name (write news.google.com, no scheme or path)")
        return {k.lower(): v for k, v in value.items()}

    def host_budget(self, host: str) -> HostBudget:
        """The budget for `host`: its own entry, else the `"*"` entry, else the default."""
        return self.hosts.get(host.lower()) or self.hosts.get(DEFAULT_HOST) or HostBudget()

    def enabled(self) -> list[Source]:
        """Every enabled source, feeds first."""
        both: list[Source] = [*self.feeds, *self.prices]
        return [s for s in both if s.enabled]
