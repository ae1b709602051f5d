"""The test feed server in its own process (so it does not share the benchmark's GIL).

    python bench/_feedsrv.py FOLDER   → prints its base URL on stdout, serves FOLDER's files
    (ETag = content hash, Last-Modified = mtime, so unchanged files answer 304).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.feed_server import FeedServer

if __name__ == "__main__":
    with FeedServer(Path(sys.argv[1])) as srv:
        print(srv.base_url, flush=True)
        threading.Event().wait()
