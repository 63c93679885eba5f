"""OneDrive photo source: mirrors one OneDrive folder into local files through Microsoft Graph.

Listing uses the delta API (msgraph-sdk) so that a later sync asks only for what changed; the
delta link and every item's state live in `state_dir`. Downloads stream from the item's
pre-authenticated download URL straight to a temp file, are verified against the size and hash
Graph gives (QuickXorHash on personal OneDrive), and are journaled one by one, so a killed sync
resumes without fetching again what it finished. The Graph bearer token never goes to the
download host, and download URLs (credentials themselves) are never logged.

This module is the source itself (sync, poll); the work is done by its helpers, which never
import it: onedrive_settings (configuration), onedrive_graph (client, errors), onedrive_delta
(listing, scoping), onedrive_download (fetching, re-checking) and onedrive_hash (verification).

Stopping: the sync runs its event loop in a thread of its own, so an interrupt in the calling
thread (Ctrl-C's KeyboardInterrupt, Dagster's run-cancel interrupt) cancels it at once and every
running download is aborted; the finished ones are already journaled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from msgraph.graph_service_client import GraphServiceClient

from facecraft_pipeline.sources.base import ChangeCheck, PhotoRecord, SyncReport
from facecraft_pipeline.sources.onedrive_auth import load_credential, resolve_auth_dir
from facecraft_pipeline.sources.onedrive_delta import (
    Folders,
    Item,
    Scope,
    apply_delta,
    is_photo_change,
    latest_delta_link,
    read_delta,
    relative_path,
    resolve_scope,
)
from facecraft_pipeline.sources.onedrive_download import download_pending, intact, is_verified, recheck_unverified
from facecraft_pipeline.sources.onedrive_graph import DeltaExpiredError, OneDriveError, open_graph
from facecraft_pipeline.sources.onedrive_hash import QuickXorHash
from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
from facecraft_pipeline.sources.sync_state import SyncStateStore

__all__ = ["OneDriveError", "OneDriveSettings", "OneDriveSource", "QuickXorHash"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_STATE_NAME = "onedrive_state"
_STATE_VERSION = 1
_CANCEL_GRACE_S = 10.0  # how long an interrupted caller waits for the sync to unwind (it takes ms)


class OneDriveSource:
    """Mirrors `settings.folder` of the signed-in user's OneDrive into `mirror_dir`.

    `credential`: any object with `get_token(*scopes, **kwargs)`; None loads the saved login
    (see `onedrive_auth.login`) when a sync or poll starts.
    """

    def __init__(self, settings: OneDriveSettings, mirror_dir: Path, state_dir: Path, credential: Any = None) -> None:
        self.settings = settings
        self.mirror_dir = Path(mirror_dir)
        self.state_dir = Path(state_dir)
        self._credential = credential
        self.description = f"onedrive:{settings.folder}" + ("" if settings.recursive else " (top level only)")

    # -- PhotoSource ---------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Bring the mirror up to date through the delta API and list every photo with its status."""
        self.mirror_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.state_dir / f"{_STATE_NAME}.lock"):
            return _run(self._sync)

    def check_for_changes(self, cursor: str | None) -> ChangeCheck:
        """Poll the delta API with the poll's own delta link (kept in the cursor); downloads nothing."""
        return _run(lambda: self._poll(cursor))

    # -- sync ----------------------------------------------------------------------------------

    async def _sync(self) -> SyncReport:
        store = SyncStateStore(self.state_dir, _STATE_NAME)
        notes: list[str] = []
        try:
            state = store.load()
        except (OSError, ValueError, TypeError) as error:
            state = {}
            notes.append(f"The OneDrive sync state was unreadable ({type(error).__name__}): listed everything again.")
        old_items: dict[str, Item] = state.get("items", {})
        try:
            async with self._graph() as graph:
                scope = await resolve_scope(graph, self.settings.folder, self.settings.graph_base_url)
                scope_key = scope.key(self.settings.recursive)
                link: str | None = state.get("delta_link")
                folders: Folders = state.get("folders", {})
                if state.get("scope") != scope_key:
                    if state.get("scope"):
                        notes.append("The OneDrive folder or its settings changed: listed everything again.")
                    link, folders = None, {}
                try:
                    entries, new_link = await read_delta(graph, scope, link)
                except DeltaExpiredError:
                    notes.append("The saved OneDrive delta token had expired (HTTP 410): full resync; "
                                 "photos missing from the new listing were removed.")
                    link = None
                    entries, new_link = await read_delta(graph, scope, None)
                folders, items = apply_delta(old_items, folders, entries, link is None, scope.folder_id,
                                             self.settings)
                damaged = 0
                for item in items.values():  # a mirror file deleted or damaged by hand is fetched again
                    if item["status"] == "ok" and not await asyncio.to_thread(intact, self.mirror_dir / item["local"], item):
                        item.update(status="pending", local=None, sha256=None)
                        damaged += 1
                if damaged:
                    notes.append(f"{damaged} mirror file(s) were missing or no longer matched their hash: fetched again.")
                rechecked = await recheck_unverified(graph, scope, items, self.mirror_dir)
                if rechecked:
                    notes.append(f"{rechecked} unverified photo(s) changed or failed their new hash: fetched again.")
                self._remove_local(old_items, items)
                await download_pending(graph, scope, items, store, self.mirror_dir, self.settings)
        finally:
            store.close()
        store.commit({"version": _STATE_VERSION, "scope": scope_key, "delta_link": new_link,
                      "folders": folders, "items": items})
        # What changed is told against the last finished sync: a killed run reported nothing.
        return self._report(store.committed_items, items, folders, scope.folder_id, notes)

    def _remove_local(self, old_items: dict[str, Item], items: dict[str, Item]) -> None:
        """Delete mirror files whose item is gone or no longer downloadable (too big, renamed away)."""
        for item_id, old in old_items.items():
            new = items.get(item_id)
            if old.get("local") and (new is None or new.get("local") != old["local"]):
                (self.mirror_dir / old["local"]).unlink(missing_ok=True)
        for stray in self.mirror_dir.glob(".*.part"):
            stray.unlink(missing_ok=True)

    def _report(self, old_items: dict[str, Item], items: dict[str, Item], folders: Folders,
                scope_id: str, notes: list[str]) -> SyncReport:
        photos, added, changed = [], [], []
        removed = sorted(item_id for item_id in set(old_items) - set(items)  # photos, not other files
                         if not str(old_items[item_id].get("reason", "")).startswith("unsupported type"))
        for item_id, item in items.items():
            ok = item["status"] == "ok"
            photos.append(PhotoRecord(
                source_id=item_id,
                name=relative_path(item, folders, scope_id),
                path=self.mirror_dir / item["local"] if ok and item.get("local") else None,
                size=int(item["size"]),
                sha256=item.get("sha256") if ok else None,
                status=item["status"],
                reason=item.get("reason", ""),
                modified=item.get("modified"),
                verified=is_verified(item) if ok else None,
            ))
            old = old_items.get(item_id)
            if ok and (old is None or old.get("status") != "ok"):
                added.append(item_id)
            elif ok and old is not None and old.get("key") != item["key"]:
                changed.append(item_id)
        failed = sum(1 for p in photos if p.status == "failed")
        unverified = sum(1 for p in photos if p.verified is False)
        if unverified:
            notes.append(f"{unverified} photo(s) kept unverified: OneDrive gave no hash, only the size was checked; "
                         "they are re-checked on the next sync.")
        if failed:
            notes.append(f"{failed} photo(s) could not be downloaded; they are retried on the next sync.")
        photos.sort(key=lambda p: (p.name, p.source_id))
        logger.info("OneDrive sync done: %d photos, %d added, %d changed, %d removed, %d failed",
                    len(photos), len(added), len(changed), len(removed), failed)
        return SyncReport(source=self.description, photos=tuple(photos), added=tuple(sorted(added)),
                          changed=tuple(sorted(changed)), removed=tuple(removed), notes=tuple(notes))

    # -- poll ----------------------------------------------------------------------------------

    async def _poll(self, cursor: str | None) -> ChangeCheck:
        saved = _parse_cursor(cursor)
        async with self._graph() as graph:
            if saved is not None and saved.get("folder") == self.settings.folder \
                    and saved.get("recursive") == self.settings.recursive:
                scope = Scope(saved["drive_id"], saved["folder_id"])
                try:
                    entries, link = await read_delta(graph, scope, saved["delta_link"])
                except DeltaExpiredError:
                    return await self._fresh_cursor(graph, scope, "the poll's delta token expired; assuming changes")
                changes = sum(1 for entry in entries if is_photo_change(entry, scope, self.settings))
                return ChangeCheck(changed=changes > 0, cursor=self._cursor(scope, link),
                                   summary=f"{changes} photo change(s) in OneDrive {self.settings.folder}")
            scope = await resolve_scope(graph, self.settings.folder, self.settings.graph_base_url)
            return await self._fresh_cursor(graph, scope, "first poll")

    async def _fresh_cursor(self, graph: GraphServiceClient, scope: Scope, why: str) -> ChangeCheck:
        return ChangeCheck(changed=True, cursor=self._cursor(scope, await latest_delta_link(graph, scope)), summary=why)

    def _cursor(self, scope: Scope, link: str) -> str:
        return json.dumps({"folder": self.settings.folder, "recursive": self.settings.recursive,
                           "drive_id": scope.drive_id, "folder_id": scope.folder_id, "delta_link": link})

    # -- shared --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _graph(self) -> AsyncIterator[GraphServiceClient]:
        credential = self._credential
        if credential is None:
            credential = load_credential(self.settings, resolve_auth_dir(self.settings, self.state_dir))
        async with open_graph(credential, self.settings.graph_base_url) as graph:
            yield graph


def _parse_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        saved = json.loads(cursor)
    except ValueError:
        return None
    keys = ("folder", "recursive", "drive_id", "folder_id", "delta_link")
    return saved if isinstance(saved, dict) and all(k in saved for k in keys) else None


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on an event loop in a thread of its own.

    The calling thread only waits, so whatever interrupts it -- KeyboardInterrupt from Ctrl-C, or
    the exception Dagster raises when a run is cancelled, also when some other code owns the
    SIGINT handler or the caller already runs an event loop -- cancels the coroutine at once; the
    interrupt is re-raised once the coroutine has unwound (downloads aborted, journal closed).
    """
    started, done = threading.Event(), threading.Event()
    handles: dict[str, Any] = {}
    outcome: dict[str, Any] = {}

    async def main() -> T:
        handles["loop"], handles["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await make()

    def work() -> None:
        try:
            outcome["value"] = asyncio.run(main())
        except BaseException as error:  # handed to the waiting caller
            outcome["error"] = error
        finally:
            done.set()

    # A daemon thread: should unwinding ever outlast the grace period, the process still exits
    # (a pool's worker would be joined at exit, behind a stalled download's read timeout).
    threading.Thread(target=work, name="onedrive-sync", daemon=True).start()
    try:
        done.wait()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]
    except BaseException:
        if not done.is_set() and started.wait(_CANCEL_GRACE_S):
            handles["loop"].call_soon_threadsafe(handles["task"].cancel)
            done.wait(_CANCEL_GRACE_S)
        raise


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One sync per state folder at a time: a second one fails fast instead of corrupting the state."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; syncs must not overlap
        yield
        return
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise OneDriveError(f"Another OneDrive sync is running on {lock_path.parent}") from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
