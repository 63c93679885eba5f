"""`photos`: sync the configured source and publish the library's listing.

Metadata counts every listed item by status, plus `unverified`: photos kept although the source
gave no hash to check their bytes by (OneDrive re-checks them on the next sync). The listing lives
in `photos/library.sqlite` (`facecraft manifest photos` exports it as JSON); what passes to
`face_crops` is its handle, and a sync rewrites only the rows that changed.
"""


import dagster as dg

from facecraft_pipeline.assets.recipe import asset_recipe
from facecraft_pipeline.assets.tracking import asset_run, output
from facecraft_pipeline.automation import SOURCE_CURSOR, record_source_cursor
from facecraft_pipeline.resources import HomeResource, MlflowResource, PhotoSourceResource
from facecraft_pipeline.retries import final_unless_transient
from facecraft_pipeline.sources.manifest import STORE_NAME, PhotoManifest, PhotoStore, sync_into
from facecraft_pipeline.sqlite_store import StoreError, library_lock

MAX_LISTED_PROBLEMS = 50  # metadata lists this many items not usable; the store has them all


@asset_recipe("ingest", code_version="photos-3", kinds={"python"})
@final_unless_transient
def photos(
    context: dg.AssetExecutionContext, home: HomeResource, mlflow: MlflowResource, photo_source: PhotoSourceResource
) -> dg.Output[PhotoManifest]:
    """Every photo of the source mirrored locally and hashed; skipped and failed items keep their reason."""
    source = photo_source.build(home.home())
    with asset_run(context, home, mlflow, params={"source": source.description, "source_kind": photo_source.kind}) as run:
        source_cursor = _poll_cursor(source, context)  # before the sync: a change during it shows at the next poll
        cursor_digest = record_source_cursor(home.home(), source_cursor) if source_cursor else None
        try:
            with library_lock(home.home().dir("state", "lock"), "photos"):
                store = PhotoStore(home.home().dir("photos") / STORE_NAME)
                report, update = sync_into(source, store)  # a local folder: only the changed records, not one per photo
                problem_count, problems = store.problems(MAX_LISTED_PROBLEMS)
        except StoreError as error:
            raise dg.Failure(description=str(error)) from error
        manifest = update.manifest
        (home.home().dir("photos") / "manifest.json").unlink(missing_ok=True)  # the JSON of before: the store replaces it
        counts = manifest.counts()
        run.log_metrics({f"photos_{k}": v for k, v in counts.items()} | {"added": len(report.added), "removed": len(report.removed)})
        for record in problems:
            context.log.warning(f"{record.status}: {record.source_id}: {record.reason}")
        more = f"\n- ... and {problem_count - len(problems)} more (`facecraft manifest photos`)" if problem_count > len(problems) else ""
        return output(
            manifest,
            run,
            manifest.digest,
            {
                "summary": f"{counts['ok']} photos from {source.description} ({len(report.added)} added, "
                f"{len(report.removed)} removed, {counts['skipped']} skipped, {counts['failed']} failed"
                + (f", {counts['unverified']} unverified)" if counts["unverified"] else ")"),
                "source": source.description,
                **({SOURCE_CURSOR: cursor_digest} if cursor_digest else {}),
                **counts,
                "added": len(report.added),
                "changed": len(report.changed),
                "removed": len(report.removed),
                "rows_written": update.written + update.deleted,
                "notes": "\n".join([*report.notes, *update.notes]) or "none",
                "not_usable": dg.MetadataValue.md(
                    "\n".join(f"- `{r.source_id}`: {r.status}: {r.reason}" for r in problems) + more or "none"
                ),
                "manifest": dg.MetadataValue.path(str(manifest.store)),
            },
        )


def _poll_cursor(source, context: dg.AssetExecutionContext) -> str | None:  # noqa: ANN001
    """The source's cheap poll cursor now, so `new_photos_sensor` can start from what this run ingests."""
    try:
        return source.check_for_changes(None).cursor
    except Exception as error:  # noqa: BLE001 - without it the sensor's first tick just runs one ingest
        context.log.warning(f"could not record the source's poll cursor ({type(error).__name__}: {error})")
        return None
