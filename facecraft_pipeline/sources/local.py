"""A folder on this machine as a photo source: photos stay where they are, nothing is copied.

Each sync lists every file of the folder (hidden files and folders excepted), hashes only the
image files whose (size, mtime_ns) changed since the last sync -- the quick check rsync makes --
and reports added/changed/removed against the previous sync's listing (kept in a SQLite store,
`local_state.py`, of which a sync rewrites only the changed rows).

A poll (`check_for_changes`, the sensor's question) stats folders, not files: a folder whose
mtime is unchanged has the same entries, so only changed folders are re-listed (names and inode
numbers from the directory itself, no stat per file, summed rather than sorted): ~0.7 s for a
million files in one folder (library_scale.md).
It sees photos added, removed, renamed, or saved anew (a new file renamed over the old: what
photo editors do); a file rewritten in place keeps its inode and its folder's mtime, and is found
by the next sync (its stat changed), not by the poll. Every listed file lands in
the report: "ok", or "skipped"/"failed" with a reason ("unsupported type: .xyz", over the size
limit, a symbolic link not followed, unreadable), so no file vanishes silently and one bad file
never stops a sync. The source judges files, not pixels: a truncated or corrupt image is listed
"ok" here, and the face stage records the decoding error when it reads it.

Symbolic links follow `LocalFolderSettings.symlinks`: by default only links whose target lies
inside the photo folder are followed; links elsewhere are listed as skipped (opt in with
"follow"). A link into the data root is never followed, and the data root itself is never
listed, whatever the policy (it holds crops and datasets, not photos). Link loops are cut.
"""

from __future__ import annotations

import hashlib
import operator
import os
import stat
import time
import zlib
from collections.abc import Callable
from typing import NamedTuple, TypeVar
from datetime import UTC, datetime
from pathlib import Path

from facecraft_pipeline.sources.base import ChangeCheck, PhotoRecord, SyncChanges, SyncReport, sha256_file, unsupported_reason
from facecraft_pipeline.sources.local_settings import LocalFolderSettings
from facecraft_pipeline.sources.local_state import CachedEntry, LocalState, PolledDir
from facecraft_pipeline.sqlite_store import RACY_MTIME_NS

T = TypeVar("T")
_MB = 1_000_000
_READ_ALL = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_UNSUPPORTED = "unsupported type"


class _Listed(NamedTuple):
    """A listed file and what one stat() said about it (`error` set when stat failed, `skip` when not taken)."""

    rel: str
    path: str  # a str, not a Path: building 100k Paths was a third of a sync
    size: int
    mtime_ns: int
    regular: bool
    error: str = ""
    skip: str = ""
    readable_by_all: bool = False  # r--r--r-- at least: no need to ask the kernel whether this process may read it


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class LocalFolderSource:
    """Photos in `folder` (and its sub-folders when `settings.recursive`); sync state kept in `state_dir`.

    `data_root`: the pipeline's data root, never listed nor reached through a link.
    """

    def __init__(
        self,
        folder: Path,
        state_dir: Path,
        settings: LocalFolderSettings | None = None,
        data_root: Path | None = None,
    ) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.settings = settings or LocalFolderSettings()
        self.suffixes = self.settings.suffix_tuple()
        # A file's type is what follows its last dot, so a suffix with two dots is never one; `endswith` on these is
        # that test without splitting every name (a third of a 100k-file sync). The poll's bytes copy: exact for ASCII.
        self._types = tuple(suffix for suffix in self.suffixes if suffix.count(".") == 1)
        self._poll_suffixes = tuple(os.fsencode(suffix) for suffix in self._types)
        self.recursive = self.settings.recursive
        self.max_file_mb = self.settings.max_file_mb
        self.data_root = Path(data_root).expanduser().resolve() if data_root is not None else None
        self.description = f"local:{self.folder}"
        # Source ids whose bytes the last sync() actually read (the rest came from the cache).
        self.last_hashed: tuple[str, ...] = ()

    @property
    def state_path(self) -> Path:
        """One state file per folder, so several sources can share a state_dir."""
        key = hashlib.sha256(str(self.folder).encode("utf-8")).hexdigest()[:16]
        return self.state_dir / f"local-{key}.sqlite"

    def _state(self) -> LocalState:
        return LocalState(self.state_path, self.folder)

    def sync(self) -> SyncReport:
        """List every image file, hash the new or touched ones, and compare with the last sync."""
        return self._sync(full=True)  # type: ignore[return-value]

    def sync_changes(self, publish: Callable[[SyncChanges], T]) -> T:
        """What `sync` does, told as the records that differ from the last sync's (no object per unchanged file).

        `publish(changes)` (the photo store's write) runs before this source saves its own state, so
        a run killed between the two computes the same changes again next time: nothing is lost.
        """
        return self._sync(full=False, publish=publish)  # type: ignore[return-value]

    def _sync(self, full: bool, publish: Callable[[SyncChanges], T] | None = None) -> SyncReport | T:
        listed, notes = self._list()
        state = self._state()
        try:
            notes.extend(state.notes)
            previous = state.entries()
            records: list[PhotoRecord] = []
            upserts: dict[str, CachedEntry] = {}
            hashed: list[str] = []
            for item in listed:
                cached = previous.get(item.rel)
                entry = self._judge(item, cached, hashed)
                if entry != cached:
                    upserts[item.rel] = entry
                if full or entry != cached:
                    records.append(_record(item, entry))
            listed_rels = {item.rel for item in listed}
            gone = [rel for rel in previous if rel not in listed_rels]
            self.last_hashed = tuple(hashed)
            added, changed, removed = _photo_changes(previous, upserts, gone)
            notes += _notes(listed, hashed)
            if full:
                result: SyncReport | T = SyncReport(self.description, tuple(records), added, changed, removed, tuple(notes))
            else:
                assert publish is not None
                result = publish(SyncChanges(self.description, tuple(records), tuple(sorted(gone)), len(listed), added, changed, removed, tuple(notes)))
            state.apply(upserts, gone)
        finally:
            state.close()
        return result

    def check_for_changes(self, cursor: str | None) -> ChangeCheck:
        """Folder-level poll: the cursor is a digest of every listed folder's image files (name, inode).

        Folders whose mtime is what the last poll saw are not re-listed; the sync state is not touched.
        """
        if not self.folder.is_dir():
            raise FileNotFoundError(f"photo folder {self.folder} does not exist or is not a folder")
        state = self._state()
        try:
            before = state.polled_dirs()
            now: dict[str, PolledDir] = {}
            pending: list[tuple[str, Path]] = [("", self.folder)]
            visited = {self.folder}
            while pending:
                rel, path = pending.pop()
                try:
                    mtime = os.stat(path).st_mtime_ns
                except OSError:
                    continue
                known = before.get(rel)
                if known is None or known.mtime_ns != mtime or known.mtime_ns < 0:
                    known = self._poll_folder(path, rel, mtime, visited)
                now[rel] = known
                pending.extend((rel + name + "/", path / name) for name in known.subdirs)
            state.save_polled_dirs(before, now)
        finally:
            state.close()
        digest = hashlib.sha256()
        for rel in sorted(now):
            digest.update(f"{rel}\t{now[rel].digest}\n".encode())
        images = sum(d.images for d in now.values())
        summary = f"{images} image files in {len(now)} folder(s) of {self.folder}"
        return ChangeCheck(changed=digest.hexdigest() != cursor, cursor=digest.hexdigest(), summary=summary)

    def _poll_folder(self, path: Path, rel: str, mtime_ns: int, visited: set[Path]) -> PolledDir:
        """One folder's image files (name, inode) and accepted sub-folders, from the directory alone.

        At a million files the work per entry, not the listing, was most of a poll: names stay bytes
        (never decoded) and a regular file is judged by its name alone; links, folders and special
        files, few, are judged after the listing as before.
        """
        names: list[bytes] = []
        inodes: list[int] = []
        others: list[os.DirEntry[bytes]] = []
        try:
            with os.scandir(os.fsencode(path)) as scan:
                for entry in scan:
                    name = entry.name
                    if name.startswith(b"."):
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        others.append(entry)
                    elif name.lower().endswith(self._poll_suffixes) or (not name.isascii() and self._takes(os.fsdecode(name))):
                        names.append(name)
                        inodes.append(entry.inode())
            subdirs = self._poll_others(others, rel, visited, names, inodes)
        except OSError:
            return PolledDir(-1, "unreadable", 0, ())
        racy = time.time_ns() - mtime_ns < RACY_MTIME_NS
        return PolledDir(-1 if racy else mtime_ns, _folder_digest(names, inodes), len(names), tuple(sorted(subdirs)))

    def _poll_others(
        self, others: list[os.DirEntry[bytes]], rel: str, visited: set[Path], names: list[bytes], inodes: list[int]
    ) -> list[str]:
        """The accepted sub-folders among a folder's links, folders and special files; their image files join `names`."""
        subdirs: list[str] = []
        notes: list[str] = []
        for entry in others:
            name, path = os.fsdecode(entry.name), Path(os.fsdecode(entry.path))
            if entry.is_symlink() and self._link_refused(path):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                pending: list[tuple[Path, str]] = []
                self._descend(path, rel + name, visited, pending, notes)
                if pending:
                    subdirs.append(name)
            elif self._takes(name):
                names.append(entry.name)
                inodes.append(entry.inode())
        return subdirs

    def _takes(self, name: str) -> bool:
        """Whether a file of this name is of a type the source takes."""
        return name.lower().endswith(self._types)  # names starting with a dot (no type) are hidden, never asked about

    def _judge(self, item: _Listed, cached: CachedEntry | None, hashed: list[str]) -> CachedEntry:
        """Status and hash of one file; reads its bytes only when the cache cannot vouch for them."""
        if item.skip:
            return CachedEntry(item.size, item.mtime_ns, None, "skipped", item.skip)
        if item.error:
            return CachedEntry(item.size, item.mtime_ns, None, "failed", f"cannot read: {item.error}")
        if not item.regular:
            return CachedEntry(item.size, item.mtime_ns, None, "skipped", "not a regular file")
        if item.size == 0:
            return CachedEntry(item.size, item.mtime_ns, None, "skipped", "empty file")
        if item.size > self.max_file_mb * _MB:
            reason = f"{item.size / _MB:.3g} MB is over the {self.max_file_mb:g} MB limit"
            return CachedEntry(item.size, item.mtime_ns, None, "skipped", reason)
        if (
            cached is not None
            and cached.status == "ok"
            and (cached.size, cached.mtime_ns) == (item.size, item.mtime_ns)
            and (item.readable_by_all or os.access(item.path, os.R_OK))
        ):
            return cached
        try:
            digest = sha256_file(item.path)
        except OSError as error:
            return CachedEntry(item.size, item.mtime_ns, None, "failed", f"cannot read: {error}")
        hashed.append(item.rel)
        return CachedEntry(item.size, item.mtime_ns, digest, "ok")

    def _list(self) -> tuple[list[_Listed], list[str]]:
        """Every non-hidden file sorted by relative path (with why it is skipped, if it is), plus notes."""
        if not self.folder.is_dir():
            raise FileNotFoundError(f"photo folder {self.folder} does not exist or is not a folder")
        notes: list[str] = []
        found: list[_Listed] = []
        visited = {self.folder}
        pending: list[tuple[Path, str]] = [(self.folder, "")]
        while pending:
            directory, prefix = pending.pop()
            try:
                with os.scandir(directory) as scan:
                    entries = sorted(scan, key=lambda e: e.name)
            except OSError as error:
                notes.append(f"cannot list: {error}")
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel, path = prefix + entry.name, entry.path  # a str: a Path per file is a third of a sync's time
                if not _utf8(rel):  # the listing is stored and shown as text: listed as skipped, never read
                    found.append(_lstat(path, rel.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), NOT_UTF8))
                    continue
                if entry.is_symlink() and (why := self._link_refused(Path(path))):
                    found.append(_lstat(path, rel, why))
                    continue
                try:
                    is_dir = entry.is_dir()  # follows a link that was accepted
                except OSError:
                    is_dir = False
                if is_dir:
                    self._descend(Path(path), rel, visited, pending, notes)
                    continue
                listed = _stat(path, rel, entry)
                if not self._takes(entry.name):
                    listed = _Listed(rel, path, max(listed.size, 0), listed.mtime_ns, False, skip=unsupported_reason(entry.name))
                found.append(listed)
        found.sort(key=lambda item: item.rel)
        return found, notes

    def _descend(self, path: Path, rel: str, visited: set[Path], pending: list[tuple[Path, str]], notes: list[str]) -> None:
        if not self.recursive:
            return
        real = path.resolve()
        if self.data_root is not None and _within(real, self.data_root):
            notes.append(f"{rel}/ is the data root (or inside it): not listed")
        elif path.is_symlink() and _within(real, self.folder):
            notes.append(f"{rel}/ links to a folder inside the photo folder: its files are listed at their real place")
        elif real in visited:
            notes.append(f"{rel}/ was already listed (a link loop or a second link to it): listed once")
        else:
            visited.add(real)
            pending.append((path, rel + "/"))

    def _link_refused(self, path: Path) -> str:
        """Why a symbolic link is not followed ("" when it is), by `settings.symlinks`."""
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return ""  # broken or looping: the stat below records it as failed
        if self.data_root is not None and _within(target, self.data_root):
            return "symbolic link into the data root: never followed"
        policy = self.settings.symlinks
        if policy == "skip":
            return "symbolic link: not followed (symlinks='skip')"
        if policy == "inside" and not _within(target, self.folder):
            return "symbolic link to outside the photo folder: not followed (symlinks='follow' takes it)"
        return ""


def _folder_digest(names: list[bytes], inodes: list[int]) -> str:
    """Digest of a folder's image files (name, inode) from sums, so no listing order matters and a million names need no sort.

    Adding or removing a file changes the count, renaming one the sum of the names' crc32 (unless the
    two names' crc32 are equal), replacing one (a new inode) the sum of inodes, swapping two files'
    names the sum of crc32 x inode.
    """
    crcs = list(map(zlib.crc32, names))
    sums = (len(crcs), sum(crcs), sum(inodes), sum(map(operator.mul, crcs, inodes)))
    return hashlib.sha256(repr(sums).encode()).hexdigest()


def _stat(path: str, rel: str, entry: os.DirEntry) -> _Listed:
    try:
        info = entry.stat()  # follows an accepted link, like path.stat(); no path re-parsing
    except OSError as error:
        return _Listed(rel, path, -1, -1, regular=False, error=str(error))
    return _Listed(rel, path, info.st_size, info.st_mtime_ns, regular=stat.S_ISREG(info.st_mode),
                   readable_by_all=info.st_mode & _READ_ALL == _READ_ALL)


NOT_UTF8 = "file name is not valid UTF-8: rename the file to import it"


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from the file system, kept as surrogates
        return False
    return True


def _lstat(path: str, rel: str, skip: str) -> _Listed:
    try:
        info = os.lstat(path)
    except OSError:
        return _Listed(rel, path, 0, -1, regular=False, skip=skip)
    return _Listed(rel, path, 0, info.st_mtime_ns, regular=False, skip=skip)


def _photo_changes(
    previous: dict[str, CachedEntry], upserts: dict[str, CachedEntry], gone: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(added, changed, removed) photos: files of a type the source does not take are listed, but are not photo changes."""
    def photo(entry: CachedEntry) -> bool:
        return not entry.reason.startswith(_UNSUPPORTED)

    added = tuple(rel for rel, e in upserts.items() if photo(e) and (rel not in previous or not photo(previous[rel])))
    changed = tuple(rel for rel, e in upserts.items()
                    if photo(e) and rel in previous and photo(previous[rel]) and _content(previous[rel]) != _content(e))
    removed = tuple(sorted([rel for rel in gone if photo(previous[rel])]
                           + [rel for rel, e in upserts.items() if not photo(e) and rel in previous and photo(previous[rel])]))
    return added, changed, removed


def _notes(listed: list[_Listed], hashed: list[str]) -> list[str]:
    notes = []
    unsupported = sum(1 for item in listed if item.skip.startswith(_UNSUPPORTED))
    if unsupported:
        notes.append(f"{unsupported} file(s) of a type this source does not take are listed as skipped")
    notes.append(f"read {len(hashed)} of {len(listed)} files; the others were unchanged, skipped or failed")
    return notes


def _content(entry: CachedEntry) -> tuple[str | None, str]:
    """What counts as a change: a different hash, or a different status (e.g. empty -> filled)."""
    return entry.sha256, entry.status


def _record(item: _Listed, entry: CachedEntry) -> PhotoRecord:
    modified = None
    if item.mtime_ns >= 0:
        modified = datetime.fromtimestamp(item.mtime_ns / 1e9, tz=UTC).isoformat()
    return PhotoRecord(
        source_id=item.rel,
        name=os.path.basename(item.rel),
        path=None if entry.status == "failed" or entry.reason == NOT_UTF8 else Path(item.path),
        size=max(item.size, 0),
        sha256=entry.sha256,
        status=entry.status,
        reason=entry.reason,
        modified=modified,
    )
