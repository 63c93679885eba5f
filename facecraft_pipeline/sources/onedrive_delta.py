"""What changed in the synced OneDrive folder, from the Graph delta API, and what it means for the mirror.

A delta listing is a flat stream of entries without paths, repeated and unordered; this module pages
through it, reduces each entry to what the mirror needs, decides which items lie inside the synced
folder (`Scope`) and folds the entries into the known items, marking what must be downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import quote

from msgraph.graph_service_client import GraphServiceClient

from facecraft_pipeline.sources.base import unsupported_reason
from facecraft_pipeline.sources.onedrive_graph import GraphStatusError, OneDriveError, get_json
from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings

Item = dict[str, Any]  # one file's state as stored: metadata from Graph + outcome of the last sync
Folders = dict[str, list[Any]]  # folder id -> [name, parent id]: enough to place an item without paths

_MB = 1_000_000  # as the local source counts


@dataclass(frozen=True)
class Scope:
    """The synced folder, by ids: stable when it is renamed or moved."""

    drive_id: str
    folder_id: str

    def key(self, recursive: bool) -> str:
        return f"{self.drive_id}/{self.folder_id}/{'recursive' if recursive else 'flat'}"


@dataclass(frozen=True)
class Entry:
    """What one delta entry means for the mirror."""

    id: str
    kind: Literal["file", "folder", "deleted", "other"]
    name: str
    parent_id: str | None
    meta: Item  # for files: size, hashes, key, etag, modified


def parse_entry(item: dict[str, Any]) -> Entry:
    item_id, name = str(item.get("id", "")), str(item.get("name", ""))
    parent = (item.get("parentReference") or {}).get("id")
    if "deleted" in item:
        return Entry(item_id, "deleted", name, parent, {})
    if "folder" in item or "root" in item:
        return Entry(item_id, "folder", name, parent, {})
    if "file" not in item:
        return Entry(item_id, "other", name, parent, {})
    given = (item.get("file") or {}).get("hashes") or {}
    hashes = {k: str(given[k]) for k in ("quickXorHash", "sha1Hash", "sha256Hash") if given.get(k)}
    size, modified = int(item.get("size") or 0), item.get("lastModifiedDateTime")
    meta = {
        "size": size,
        "hashes": hashes,
        "key": _content_key(hashes, item.get("cTag"), size, modified),
        "etag": item.get("eTag"),
        "modified": modified,
    }
    return Entry(item_id, "file", name, parent, meta)


def _content_key(hashes: dict[str, str], ctag: str | None, size: int, modified: str | None) -> str:
    """What changes exactly when the bytes change: a content hash, else the cTag, else size + time."""
    for name in ("quickXorHash", "sha256Hash", "sha1Hash"):
        if hashes.get(name):
            return f"{name}:{hashes[name]}"
    return f"cTag:{ctag}" if ctag else f"size:{size}:{modified}"


# --------------------------------------------------------------------------------------------
# Reading from Graph.


async def resolve_scope(graph: GraphServiceClient, folder: str, graph_base_url: str) -> Scope:
    """The signed-in user's drive and the id of `folder` in it (a path, "/", or "special:<name>")."""
    drive = await get_json(graph.me.drive, "reading the signed-in user's drive")
    drive_id = str(drive.get("id") or "")
    if not drive_id:
        raise OneDriveError("Microsoft Graph returned no drive for the signed-in user")
    drive_builder = graph.drives.by_drive_id(drive_id)
    folder = folder.strip()
    if folder.lower().startswith("special:"):
        folder_builder: Any = drive_builder.special.by_drive_item_id(folder.split(":", 1)[1])
    elif not folder.strip("/"):
        folder_builder = drive_builder.root
    else:
        path = "/".join(quote(part, safe="") for part in folder.strip("/").split("/") if part)
        base = graph_base_url.rstrip("/")
        folder_builder = drive_builder.root.with_url(f"{base}/drives/{quote(drive_id, safe='!')}/root:/{path}:")
    try:
        item = await get_json(folder_builder, f"looking up {folder!r}")
    except GraphStatusError as error:
        if error.status == 404:
            raise OneDriveError(f"There is no folder {folder!r} in this OneDrive") from None
        raise
    if not item.get("id") or ("folder" not in item and "root" not in item):
        raise OneDriveError(f"{folder!r} is not a folder in this OneDrive")
    return Scope(drive_id, str(item["id"]))


async def read_delta(graph: GraphServiceClient, scope: Scope, link: str | None) -> tuple[list[Entry], str]:
    """Every entry since `link` (None: the whole folder), and the delta link for next time.

    Raises DeltaExpiredError when `link` is too old to resume from.
    """
    builder = graph.drives.by_drive_id(scope.drive_id).items.by_drive_item_id(scope.folder_id).delta
    entries: list[Entry] = []
    url = link
    while True:
        page_builder = builder.with_url(url) if url else builder
        page = await get_json(page_builder, "listing changes")
        entries.extend(parse_entry(item) for item in page.get("value") or [] if isinstance(item, dict))
        url = page.get("@odata.nextLink")
        if url:
            continue
        if not page.get("@odata.deltaLink"):
            raise OneDriveError("Microsoft Graph ended a delta listing without a delta link")
        return entries, str(page["@odata.deltaLink"])


async def latest_delta_link(graph: GraphServiceClient, scope: Scope) -> str:
    """A delta link for "from now on", without listing the folder (token=latest)."""
    builder = graph.drives.by_drive_id(scope.drive_id).items.by_drive_item_id(scope.folder_id)
    latest = builder.delta_with_token("latest")
    page = await get_json(latest, "asking for the latest delta token")
    if not page.get("@odata.deltaLink"):
        raise OneDriveError("Microsoft Graph gave no delta link for token=latest")
    return str(page["@odata.deltaLink"])


# --------------------------------------------------------------------------------------------
# Folder scoping.


def is_photo_change(entry: Entry, scope: Scope, settings: OneDriveSettings) -> bool:
    """Whether a poll should report `entry`: a photo (by suffix) in scope, or any deletion that may be one."""
    if entry.kind == "deleted":
        return not entry.name or PurePosixPath(entry.name).suffix.lower() in settings.suffix_set()
    if entry.kind != "file" or PurePosixPath(entry.name).suffix.lower() not in settings.suffix_set():
        return False
    return settings.recursive or entry.parent_id == scope.folder_id


def _reaches(parent: str | None, folders: Folders, scope_id: str, recursive: bool) -> bool:
    if not recursive:
        return parent == scope_id
    seen: set[str] = set()
    while parent is not None and parent not in seen:
        if parent == scope_id:
            return True
        seen.add(parent)
        node = folders.get(parent)
        parent = node[1] if node else None
    return False


def relative_path(item: Item, folders: Folders, scope_id: str) -> str:
    """The item's path below the synced folder, rebuilt from the known folders."""
    parts = [item["name"]]
    parent, hops = item.get("parent"), 0
    while parent is not None and parent != scope_id and parent in folders and hops < 256:
        parts.append(folders[parent][0])
        parent, hops = folders[parent][1], hops + 1
    return "/".join(reversed(parts))


# --------------------------------------------------------------------------------------------
# Applying a delta to the known items.


def apply_delta(old_items: dict[str, Item], old_folders: Folders, entries: list[Entry],
                full: bool, scope_id: str, settings: OneDriveSettings) -> tuple[Folders, dict[str, Item]]:
    """The folders and files after `entries`; photos to fetch get status "pending", files of other
    types "skipped" (so every file of the folder is listed, none downloaded that is not a photo).

    Delta entries repeat (the last one wins), carry no paths, and a deleted folder may come without
    its children: membership is decided by walking parent ids up to the synced folder.
    """
    latest: dict[str, Entry] = {}
    for entry in entries:
        if entry.id and entry.id != scope_id:
            latest.pop(entry.id, None)
            latest[entry.id] = entry
    folders = {} if full else dict(old_folders)
    for entry in latest.values():
        if entry.kind == "folder":
            folders[entry.id] = [entry.name, entry.parent_id]
        elif entry.kind == "deleted":
            folders.pop(entry.id, None)
    folders[scope_id] = ["", None]
    folders = {fid: node for fid, node in folders.items()
               if fid == scope_id or _reaches(node[1], folders, scope_id, True)}

    candidates: dict[str, Item] = {} if full else {
        item_id: item for item_id, item in old_items.items() if item_id not in latest
    }
    for entry in latest.values():
        if entry.kind == "file":
            candidates[entry.id] = {"name": entry.name, "parent": entry.parent_id, **entry.meta}

    suffixes, max_bytes = settings.suffix_set(), int(settings.max_file_mb * _MB)
    items: dict[str, Item] = {}
    for item_id, meta in candidates.items():
        if not _reaches(meta.get("parent"), folders, scope_id, settings.recursive):
            continue
        if PurePosixPath(meta["name"]).suffix.lower() not in suffixes:  # listed, never downloaded
            items[item_id] = {**meta, "status": "skipped", "local": None, "sha256": None,
                              "reason": unsupported_reason(meta["name"])}
            continue
        items[item_id] = {**meta, **_decide(meta, old_items.get(item_id), settings, max_bytes)}
    return folders, items


def _decide(meta: Item, old: Item | None, settings: OneDriveSettings, max_bytes: int) -> Item:
    """Skipped (size limits), ok (same content already mirrored) or pending (to download)."""
    size = int(meta["size"])
    if size > max_bytes:
        return {"status": "skipped", "local": None, "sha256": None,
                "reason": f"{size / _MB:.1f} MB is over max_file_mb={settings.max_file_mb:g}"}
    if size < settings.min_file_bytes:
        return {"status": "skipped", "local": None, "sha256": None,
                "reason": f"{size} bytes is under min_file_bytes={settings.min_file_bytes}"}
    if old is not None and old.get("status") == "ok" and old.get("key") == meta["key"] and old.get("local"):
        kept = {k: old[k] for k in ("verified", "mtime_ns") if k in old}  # what the mirror file was checked by
        return {"status": "ok", "reason": "", "local": old["local"], "sha256": old.get("sha256"), **kept}
    return {"status": "pending", "reason": "", "local": None, "sha256": None}
