"""All configuration comes from the environment (or `.env`); tokens are SecretStr."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.models import Severity


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    rules_dir: Path = Field(default=Path("rules"), description="sources.yaml, watchlists.yaml, rule files")
    database_url: str = "sqlite+aiosqlite:///readout.db"
    backlog_hours: float = Field(default=24.0, ge=0)
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
    poll_concurrency: int = Field(
        default=16, ge=1, le=256, description="fetches in flight at once (README, Benchmarks: polling)"
    )

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

    # Logs and metrics
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_port: int | None = None
