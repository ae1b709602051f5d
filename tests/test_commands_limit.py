"""The per-user command limit: a token bucket per (adapter, user), one refusal, then silence."""

from __future__ import annotations

import pytest

from bot.commands.limit import CommandLimiter, Verdict


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_one_refusal_then_silence_then_refill() -> None:
    t = Ticker()
    limiter = CommandLimiter(burst=3, period=30, clock=t)  # one token every 10 s
    assert [limiter.check("telegram", 1) for _ in range(3)] == [Verdict.ALLOW] * 3
    assert limiter.check("telegram", 1) is Verdict.REFUSE
    assert [limiter.check("telegram", 1) for _ in range(5)] == [Verdict.SILENT] * 5
    t.now += 9.9
    assert limiter.check("telegram", 1) is Verdict.SILENT  # not a whole token yet
    t.now += 0.2
    assert limiter.check("telegram", 1) is Verdict.ALLOW
    assert limiter.check("telegram", 1) is Verdict.REFUSE  # told again after an allowed command
    t.now += 1000
    assert [limiter.check("telegram", 1) for _ in range(4)] == [Verdict.ALLOW] * 3 + [
        Verdict.REFUSE
    ]


def test_users_and_adapters_have_their_own_buckets() -> None:
    limiter = CommandLimiter(burst=1, period=60, clock=Ticker())
    assert limiter.check("telegram", 1) is Verdict.ALLOW
    assert limiter.check("telegram", 1) is Verdict.REFUSE
    assert limiter.check("telegram", 2) is Verdict.ALLOW
    assert limiter.check("discord", 1) is Verdict.ALLOW


def test_steady_pace_within_the_rate_is_never_refused() -> None:
    t = Ticker()
    limiter = CommandLimiter(burst=10, period=60, clock=t)
    for _ in range(200):  # one command every 6 s is exactly the rate
        assert limiter.check("discord", 7) is Verdict.ALLOW
        t.now += 6


def test_memory_is_bounded() -> None:
    t = Ticker()
    limiter = CommandLimiter(burst=2, period=10, clock=t, max_users=100)
    for user in range(1000):
        limiter.check("telegram", user)
        limiter.check("telegram", user)  # bucket empty: not idle
        t.now += 0.001
    assert len(limiter._buckets) <= 100
    t.now += 100  # everyone refilled: idle buckets are dropped first
    limiter.check("telegram", "new")
    assert len(limiter._buckets) <= 2


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        CommandLimiter(burst=0)
    with pytest.raises(ValueError):
        CommandLimiter(period=0)
