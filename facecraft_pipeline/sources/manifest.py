"""The photo library as one versioned listing: what the `photos` stage hands downstream."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from facecraft_pipeline.sources.base import PhotoRecord, SyncReport


@dataclass(frozen=True)
class PhotoManifest:
    """Every item of the source after a sync; `digest` changes exactly when the usable photos do."""

    source: str
    records: tuple[PhotoRecord, ...]
    digest: str

    @property
    def usable(self) -> tuple[PhotoRecord, ...]:
        return tuple(r for r in self.records if r.status == "ok" and r.path is not None and r.sha256)

    def counts(self) -> dict[str, int]:
        """Records per status, plus `unverified`: fetched photos kept without a hash to check them by."""
        counts = {"total": len(self.records), "ok": 0, "skipped": 0, "failed": 0, "unverified": 0}
        for record in self.records:
            counts[record.status] += 1
            counts["unverified"] += record.status == "ok" and record.verified is False
        return counts

    def write_json(self, path: Path) -> Path:
        rows = [{**asdict(r), "path": str(r.path) if r.path else None} for r in self.records]
        path.write_text(json.dumps({"source": self.source, "digest": self.digest, "photos": rows}, indent=1))
        return path


def manifest_from_report(report: SyncReport) -> PhotoManifest:
    records = tuple(sorted(report.photos, key=lambda r: r.source_id))
    digest = hashlib.sha256()
    for record in records:
        if record.status == "ok" and record.sha256:
            digest.update(f"{record.source_id}\0{record.sha256}\n".encode())
    return PhotoManifest(source=report.source, records=records, digest=digest.hexdigest())
