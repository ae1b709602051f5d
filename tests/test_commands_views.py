"""/status and /recent against hostile input and secret-bearing URLs (issue 12, item 13).

The real TelegramAdapter against the fake Bot API; a feed configured with
credentials and a pre-signed S3 query, and its failure recorded the way a
poll records it (`FetchError`'s own text).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.adapters.telegram import TelegramAdapter
from bot.clock import ManualClock
from bot.commands.urls import HIDDEN, mask_url, mask_urls
from bot.rules.loader import load_rules_dir
from bot.services import RuleSetHolder, Services
from bot.settings import Settings
from bot.sources.http import FetchError
from bot.storage.store import Store
from tests.support.botproc import write_rules
from tests.support.fake_telegram import FakeTelegram

T0 = datetime(2025, 4, 2, 20, 0, tzinfo=UTC)
ADMIN, STRANGER = 5601, 5602
SECRET_URL = (
    "https://reader:hunter2@feeds.example.com/private/rss.xml"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20250402"
    "&X-Amz-Signature=0f1e2d3c4b5a&access_token=tok-123456"
)
SECRETS = ("hunter2", "AKIAIOSFODNN7EXAMPLE", "0f1e2d3c4b5a", "tok-123456", "reader")


@pytest.fixture
async def services(fake_telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[Services]:
    rules = write_rules(tmp_path / "rules", {"private-wire": SECRET_URL})
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=fake_telegram.token,  # type: ignore[arg-type]
        telegram_base_url=fake_telegram.base_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'views.db'}",
        rules_dir=rules,
        admins=f"telegram:{ADMIN}",
    )
    store = await Store.open(settings.database_url)
    svc = Services(settings, store, ManualClock(T0), RuleSetHolder(load_rules_dir(rules)), ["telegram"])
    adapter = TelegramAdapter(settings, poll_timeout=1, per_chat_interval=0)
    await adapter.start(svc)
    try:
        yield svc
    finally:
        await adapter.stop()
        await store.close()


async def _say(fake: FakeTelegram, chat: int, text: str) -> str:
    before = len(fake.sent_messages(chat))
    fake.push_message(chat, text)
    return str((await fake.wait_for_reply(chat, after=before))["plain"])


async def test_recent_with_a_superscript_digit_is_a_usage_error(
    services: Services, fake_telegram: FakeTelegram
) -> None:
    for arg in ("²", "٣", "1²"):
        answer = await _say(fake_telegram, STRANGER, f"/recent {arg}")
        assert "n must be a number from 1 to 20" in answer, arg
        assert "Something went wrong" not in answer


async def test_status_hides_urls_from_users_and_masks_them_for_admins(
    services: Services, fake_telegram: FakeTelegram
) -> None:
    error = str(FetchError("http_status", SECRET_URL, "HTTP 503 Service Unavailable", status=503))
    await services.store.record_poll("private-wire", at=T0, error=error)

    stranger = await _say(fake_telegram, STRANGER, "/status")
    assert "private-wire" in stranger and "HTTP 503" in stranger  # health is for everyone
    assert "feeds.example.com" not in stranger and "127.0.0.1" not in stranger  # URLs are not
    assert not [s for s in SECRETS if s in stranger]

    admin = await _say(fake_telegram, ADMIN, "/status")
    assert "https://***@feeds.example.com/private/rss.xml?…" in admin
    assert not [s for s in SECRETS if s in admin]
    assert f"Telegram API {mask_url(fake_telegram.base_url)}" in admin
    assert fake_telegram.token.split(":")[1] not in admin


def test_mask_url_drops_credentials_query_and_token_segments() -> None:
    token = "7000000001:AAFakeTokenForTestsOnly-abcdefghijkl"
    assert mask_url(f"https://api.telegram.org/bot{token}/getMe") == "https://api.telegram.org/***/getMe"
    assert mask_url("https://u:p@[::1]:8443/a?b=c#d") == "https://***@[::1]:8443/a?…"
    assert mask_urls(f"GET {SECRET_URL}: HTTP 503", reveal=False) == f"GET {HIDDEN}: HTTP 503"
