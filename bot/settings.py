"""All configuration comes from the environment (or `.env`); tokens are SecretStr."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.models import Severity

# The rules shipped with Readout (the repo's `rules/`; present in a checkout or `pip install -e`).
BUNDLED_RULES_DIR = Path(__file__).resolve().parent.parent / "rules"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Hosts that hand out `postgres://…` (Heroku-style) mean PostgreSQL; Readout talks to it
# through an async driver, so a bare scheme gets the default one.
_URL_SCHEMES = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
_ACCEPTED_URLS = "sqlite+aiosqlite:///FILE, postgresql://…, postgresql+asyncpg://… or postgresql+psycopg://…"
_DRIVERS = {"sqlite+aiosqlite", "postgresql+asyncpg", "postgresql+psycopg"}


def async_database_url(url: str) -> str:
    """`postgres://` and `postgresql://` → `postgresql+asyncpg://`; `sqlite://` → aiosqlite.

    Raises ValueError naming the accepted forms for any other scheme."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        raise ValueError(f"not a database URL; use {_ACCEPTED_URLS}")
    scheme = _URL_SCHEMES.get(scheme.lower(), scheme.lower())
    if scheme not in _DRIVERS:
        raise ValueError(f"unsupported scheme {url.partition('://')[0]!r}; use {_ACCEPTED_URLS}")
    return f"{scheme}://{rest}"


class Settings(BaseSettings):
    # env_ignore_empty: `.env.example` copied as is leaves `NAME=` lines, which mean "unset".
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    rules_dir: Path = Field(default=Path("rules"), description="sources.yaml, watchlists.yaml, rule files")
    rules_defaults: bool = Field(
        default=True,
        description="files missing from RULES_DIR come from the bundled rules; false: RULES_DIR holds them all",
    )
    database_url: str = "sqlite+aiosqlite:///readout.db"
    backlog_hours: float = Field(default=24.0, ge=0)
    database_wait: float = Field(
        default=300.0, ge=0, description="seconds to keep retrying an unreachable database at start; then exit 1"
    )
    event_retention_days: float = Field(
        default=14.0,
        ge=0,
        description="days of seen headlines and price samples kept for `dry-run`; 0 keeps none",
    )
    reload_dry_run_hours: float = Field(
        default=24.0,
        ge=0,
        description="after a hot reload, replay this many hours of stored events through the new rules and log "
        "then vs now per rule (CPU-bound, in a worker thread: ~2 ms per event); 0 turns it off",
    )

    # HTTP client for sources
    http_timeout: float = Field(default=15.0, gt=0, description="seconds")
    http_max_bytes: int = Field(default=5_000_000, gt=0)
    http_max_redirects: int = Field(default=5, ge=0)
    http_user_agent: str = "Mozilla/5.0 (compatible; Readout/0.1; +https://github.com/readout)"
    poll_jitter: float = Field(default=5.0, ge=0, description="seconds of random jitter per poll")
    surge_ease: float = Field(
        default=1 / 60,
        ge=0,
        le=1,
        description="a surging source that stays quiet waits this fraction of its quiet time, 1/60: 30 s after "
        "30 quiet minutes (docs/freshness.md); "
        "0 holds every surge at its interval until it ends",
    )
    poll_concurrency: int = Field(
        default=16, ge=1, le=256, description="fetches in flight at once (docs/benchmarks.md: polling)"
    )
    poll_deadline: float = Field(
        default=30.0, gt=0, description="seconds for one whole fetch, redirects and a dripping body included"
    )
    poll_slow_after: float = Field(
        default=5.0, gt=0, description="seconds after which a fetch counts as slow and leaves its poll slot"
    )
    poll_slow_slots: int = Field(
        default=0, ge=0, le=256, description="slow fetches at once, on top of poll_concurrency; 0: a quarter of it"
    )

    def slow_slots(self) -> int:
        """Slots for slow fetches (see bot/sources/slots.py)."""
        return self.poll_slow_slots or max(1, self.poll_concurrency // 4)

    # Push (WebSub): off unless WEBSUB_PUBLIC_URL is set (bot/sources/websub_subscriber.py)
    websub_public_url: str | None = Field(
        default=None,
        description="public base URL hubs reach the callback endpoint at (e.g. https://bot.example.com); unset: no push",
    )
    websub_listen_host: str = Field(default="0.0.0.0", description="address the callback endpoint listens on")
    websub_listen_port: int = Field(default=8089, ge=0, le=65535, description="its port (every worker; SO_REUSEPORT)")
    websub_lease_seconds: int = Field(default=864_000, ge=60, description="lease asked of hubs (they may grant less)")
    websub_verify_timeout: float = Field(
        default=120.0, gt=0, description="seconds a hub has to verify a (un)subscription before it is retried"
    )
    websub_retry_seconds: float = Field(
        default=300.0, gt=0, description="first retry after a hub fails; doubles per failure, up to 6 hours"
    )
    websub_check_seconds: float = Field(default=30.0, gt=0, description="seconds between subscription checks")

    # Adapters
    console: bool | None = Field(default=None, description="console adapter; default: on when no chat token is set")
    console_min_severity: Severity = Severity.info
    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_max_rate: float = Field(
        default=29.0,
        gt=0,
        le=30,
        description="messages/s overall: just under Telegram's 30, since requests bunch up in flight",
    )
    telegram_paid_max_rate: float = Field(
        default=950.0,
        gt=0,
        le=1000,
        description="paid broadcast messages/s: under Telegram's 1,000, for the same reason as telegram_max_rate",
    )
    telegram_paid_broadcast: Literal["off", "warning", "critical"] = Field(
        default="off",
        description="alerts of this severity or above go out with allow_paid_broadcast (up to 1,000 msg/s, "
        "0.1 Telegram Star each from the bot's balance); off: never (opt-in)",
    )
    telegram_paid_broadcast_daily_stars: int = Field(
        default=0,
        ge=0,
        description="Stars paid broadcast may spend per UTC day (10 messages per Star); required (> 0) when on",
    )
    discord_bot_token: SecretStr | None = None
    discord_guild_id: int | None = None
    discord_api_base: str | None = None

    # Delivery
    delivery_interval: float = Field(default=1.0, gt=0, description="seconds between outbox drains")
    delivery_claim_seconds: float = Field(
        default=120.0,
        ge=5,
        description="how long a worker's claim on outbox rows lasts; a dead worker's rows return after it",
    )
    delivery_max_attempts: int = Field(default=40, ge=1, description='about 3 hours of backoff capped at 5 minutes')
    delivery_gone_confirm_seconds: float = Field(
        default=60.0, ge=0, description="a chat answering 'blocked'/'not found' is tried once more after this"
    )
    delivery_gone_burst: int = Field(
        default=5, ge=2, description="this many chats 'gone' within a minute is an API fault: pause, unsubscribe nobody"
    )
    delivery_fault_pause_seconds: float = Field(default=60.0, gt=0, description="pause after such a burst")
    delivery_patient_timeout: float = Field(
        default=60.0, gt=0, description="seconds the one resend after a timeout waits for the answer"
    )
    alerts_per_poll_max: int = Field(
        default=20, ge=1, description="alerts one poll of one source may raise; the rest become one digest"
    )
    alerts_per_rule_max: int = Field(
        default=60, ge=1, description="alerts one rule may raise per `alerts_per_rule_window` seconds"
    )
    alerts_per_rule_window: float = Field(default=3600.0, gt=0, description="seconds")

    admins: str = Field(
        default="",
        description="comma-separated user ids (Telegram, Discord; `telegram:123` to be specific) "
        "who see source URLs, masked, in /status; nobody else sees a URL",
    )

    def admin_ids(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.admins.split(",") if a.strip())

    # Live outcomes (issue 16)
    outcome_symbols: list[str] = Field(
        default=["ES=F", "^VIX", "CNH=X"],
        description="symbols whose move 30 min and 1 trading day after each alert is added to it",
    )
    outcome_interval: float = Field(default=30.0, gt=0, description="seconds between outcome passes")
    backtest_report: Path | None = Field(
        default=None, description="a `backtest --report` JSON shown beside the live track record"
    )

    # Logs and metrics
    summary_minutes: float = Field(
        default=15.0, ge=0, description="minutes between poll summary lines; 0: only after the first round"
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_format: Literal["text", "json"] = "text"
    metrics_port: int | None = None

    def defaults_dir(self) -> Path | None:
        """The directory RULES_DIR is layered over (None when opted out or absent)."""
        if not self.rules_defaults or not BUNDLED_RULES_DIR.is_dir():
            return None
        return BUNDLED_RULES_DIR

    def with_found_rules(self) -> Settings:
        """Started from another folder with no RULES_DIR or --rules: use the bundled rules."""
        if "rules_dir" in self.model_fields_set or self.rules_dir.is_dir() or not BUNDLED_RULES_DIR.is_dir():
            return self
        return self.model_copy(update={"rules_dir": BUNDLED_RULES_DIR})

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return async_database_url(value)

    @field_validator("websub_public_url")
    @classmethod
    def _public_http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"use one of {', '.join(LOG_LEVELS)}")
        return level

    @model_validator(mode="after")
    def _paid_broadcast_has_a_cap(self) -> Settings:
        """Paid broadcast spends real money: never on without a daily cap."""
        if self.telegram_paid_broadcast != "off" and self.telegram_paid_broadcast_daily_stars <= 0:
            raise ValueError(
                "TELEGRAM_PAID_BROADCAST is on: set TELEGRAM_PAID_BROADCAST_DAILY_STARS to the Stars "
                "it may spend per UTC day (a whole number > 0; 0.1 Star per message)"
            )
        return self

    def paid_broadcast_from(self) -> Severity | None:
        """The lowest severity sent as paid broadcast (None: off)."""
        if self.telegram_paid_broadcast == "off":
            return None
        return Severity(self.telegram_paid_broadcast)

    @field_validator("telegram_bot_token", "discord_bot_token")
    @classmethod
    def _blank_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        """A token of spaces never turns an adapter on (the console would go quiet)."""
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())


def settings_problems(exc: ValidationError) -> list[str]:
    """One line per bad variable: `NAME='value': what is accepted` (tokens never echoed)."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else "settings"
        var = name.upper()
        message = err["msg"].removeprefix("Value error, ")
        message = message.replace("Input should be", "expected")
        if "token" in name:
            shown = var
        else:
            value = err.get("input")
            shown = f"{var}={value!r}" if isinstance(value, (str, int, float)) else var
        lines.append(f"{shown}: {message}")
    return lines
