"""Schema of `rules/sources.yaml`: the only place sources are defined."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

PriceProvider = Literal["yahoo", "cboe", "csv"]

DEFAULT_PRICE_URLS: dict[str, str] = {
    "yahoo": "https://query1.finance.yahoo.com/v8/finance/chart/{symbol}?range=1d&interval=5m",
    "cboe": "https://cdn.cboe.com/api/global/delayed_quotes/quotes/{cboe_symbol}.json",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeedSource(_Strict):
    """An RSS 2.0 / RSS 1.0 / Atom feed."""

    kind: ClassVar[Literal["feed"]] = "feed"
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    url: HttpUrl
    interval: int = Field(default=300, ge=5, le=86_400, description="seconds between polls")
    tags: tuple[str, ...] = ()
    enabled: bool = True
    name: str | None = None

    @property
    def source_id(self) -> str:
        """The source's identity (state, leases, logs): its `id`."""
        return self.id

    def fetch_url(self) -> str:
        return str(self.url)


class PriceSource(_Strict):
    """A price series from a keyless provider."""

    kind: ClassVar[Literal["price"]] = "price"
    symbol: str = Field(min_length=1, max_length=32)
    provider: PriceProvider
    url: str | None = None
    interval: int = Field(default=60, ge=5, le=86_400, description="seconds between polls")
    tags: tuple[str, ...] = ()
    enabled: bool = True
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.^=-]*$", max_length=64)
    column: str | None = None  # csv provider: value column (default: the second column)

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


# Every source has `kind`, `source_id`, `interval`, `enabled`, `tags` and `fetch_url()`.
Source = FeedSource | PriceSource


class SourcesFile(_Strict):
    feeds: list[FeedSource] = []
    prices: list[PriceSource] = []

    def enabled(self) -> list[Source]:
        """Every enabled source, feeds first."""
        both: list[Source] = [*self.feeds, *self.prices]
        return [s for s in both if s.enabled]
