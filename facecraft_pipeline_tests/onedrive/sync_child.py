"""A OneDrive sync in a process of its own, for tests that interrupt it (SIGINT) from outside.

    python -m facecraft_pipeline_tests.onedrive.sync_child BASE_URL TOKEN WORKDIR plain|dagster

`dagster` runs the sync inside a real Dagster step (`dg.materialize`): under Dagster's own SIGINT
handling, which turns an interrupt into DagsterExecutionInterruptedError (what a run cancel delivers).
"""

from __future__ import annotations

import sys
from pathlib import Path

from facecraft_pipeline.sources.onedrive import OneDriveSource
from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
from facecraft_pipeline_tests.onedrive.conftest import StaticToken


def main(base_url: str, token: str, workdir: str, mode: str) -> None:
    work = Path(workdir)
    settings = OneDriveSettings(client_id="test-client", graph_base_url=base_url, max_concurrency=4)
    source = OneDriveSource(settings, work / "mirror", work / "state", credential=StaticToken(token))
    print("syncing", flush=True)
    if mode == "dagster":
        import dagster as dg

        @dg.asset
        def onedrive_sync() -> None:
            source.sync()

        dg.materialize([onedrive_sync])
    else:
        source.sync()
    print("finished", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:5])
