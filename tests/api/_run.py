"""Run a server or a worker with an evidence source that takes ``OPSAGENT_TEST_SLOW_SECONDS`` (a fake at
the EvidenceSource seam), so a test can kill it in the middle of an investigation.

    python tests/api/_run.py serve PORT
    python tests/api/_run.py worker NAME
"""

from __future__ import annotations

import os
import sys
import time

from opsagent.config import Settings
from opsagent.domain import Incident
from opsagent.evidence.base import Collected


class SlowSource:
    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def collect(self, incident: Incident) -> Collected:
        time.sleep(self.seconds)
        return Collected()


def main() -> None:
    settings = Settings()
    sources = [SlowSource(float(os.environ.get("OPSAGENT_TEST_SLOW_SECONDS", "0")))]
    if sys.argv[1] == "serve":
        import uvicorn

        from opsagent.api import create_app

        uvicorn.run(
            create_app(settings, sources=sources),
            host="127.0.0.1",
            port=int(sys.argv[2]),
            log_level="warning",
        )
    else:
        from opsagent.factory import build_services
        from opsagent.jobs import run_worker

        run_worker(settings, build_services(settings, sources), name=sys.argv[2])


if __name__ == "__main__":
    main()
