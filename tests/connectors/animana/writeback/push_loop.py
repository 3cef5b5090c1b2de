"""A dispatcher in a process of its own, for the kill test: pushes one practice until nothing is due, printing
``sent <entry id>`` after each HTTP write (before its batch commits), so the test can kill it mid-batch.

    python -m tests.connectors.animana.writeback.push_loop '<json: app_url, sim_url, client_id, secret, practice>'
"""

from __future__ import annotations

import json
import sys

from connectors.animana import AnimanaClient, load_settings
from connectors.animana.sync.links import LinkedPractice
from connectors.animana.writeback.dispatcher import push
from tests.animana_sync_support import FAST, MASTER_KEY
from warehouse.kernel.db import make_engine


def main(arguments: dict) -> None:
    engine = make_engine(arguments["app_url"])
    settings = load_settings(
        url=arguments["sim_url"], client_id=arguments["client_id"], client_secret=arguments["secret"]
    )
    practice = LinkedPractice(**arguments["practice"])

    def report(entry: object) -> None:
        sys.stdout.write(f"sent {entry.id}\n")  # type: ignore[attr-defined]
        sys.stdout.flush()

    with AnimanaClient(settings, retry=FAST) as client:
        while push(engine, client, practice, master_key=MASTER_KEY, batch_size=3, after_send=report).handled:
            pass


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
