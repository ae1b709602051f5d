"""Shared test setup: every test runs offline; servers are local fakes on 127.0.0.1."""

from __future__ import annotations

import os

os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ.pop("HTTP_PROXY", None)
os.environ.pop("HTTPS_PROXY", None)
os.environ.pop("http_proxy", None)
os.environ.pop("https_proxy", None)

pytest_plugins = [
    "tests.support.feed_server",
    "tests.support.fake_telegram",
    "tests.support.fake_discord",
    "tests.support.databases",
    "tests.support.websub_hub",
]
