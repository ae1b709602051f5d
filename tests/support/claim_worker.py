"""A bare outbox worker process for the multi-process claim test (tests/test_storage.py).

    python -m tests.support.claim_worker DATABASE_URL WORKER_ID LEASE_SECONDS LOG_FILE

Claims due rows, "sends" each one by appending `row_id worker_id` to LOG_FILE
(flushed before marking it sent, like a chat API that accepted the message),
then marks it sent. Exits when it has found nothing to claim for longer than
two leases. Uses the wall clock, as a real worker does.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import UTC, datetime

from bot.storage.store import Store


async def main(url: str, worker_id: str, lease: float, log_path: str) -> None:
    store = await Store.open(url)
    idle_since = time.monotonic()
    with open(log_path, "a", buffering=1) as log:  # noqa: ASYNC230 - a test helper
        while time.monotonic() - idle_since < 2 * lease:
            rows = await store.claim_deliveries(
                worker_id=worker_id,
                now=datetime.now(UTC),
                adapters=["chat"],
                limit=5,
                lease_seconds=lease,
            )
            if not rows:
                await asyncio.sleep(0.02)
                continue
            idle_since = time.monotonic()
            for row in rows:
                log.write(f"{row.id} {worker_id}\n")
                log.flush()
                os.fsync(log.fileno())
                await asyncio.sleep(0.002)
                await store.mark_sent([row.id], message_id=worker_id, at=datetime.now(UTC))
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]))
