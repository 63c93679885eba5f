"""`photos`: sync the configured source and publish the library's listing.

Metadata counts every listed item by status, plus `unverified`: photos kept although the source
gave no hash to check their bytes by (OneDrive re-checks them on the next sync).
"""


import dagster as dg

from facecraft_pipeline.assets.tracking import asset_run, output
from facecraft_pipeline.resources import HomeResource, MlflowResource, PhotoSourceResource
from facecraft_pipeline.sources.manifest import PhotoManifest, manifest_from_report


@dg.asset(code_version="photos-2", group_name="ingest", kinds={"python"})
def photos(
    context: dg.AssetExecutionContext, home: HomeResource, mlflow: MlflowResource, photo_source: PhotoSourceResource
) -> dg.Output[PhotoManifest]:
    """Every photo of the source mirrored locally and hashed; skipped and failed items keep their reason."""
    source = photo_source.build(home.home())
    with asset_run(context, home, mlflow, params={"source": source.description, "source_kind": photo_source.kind}) as run:
        report = source.sync()
        manifest = manifest_from_report(report)
        manifest_path = manifest.write_json(home.home().dir("photos") / "manifest.json")
        counts = manifest.counts()
        run.log_metrics({f"photos_{k}": v for k, v in counts.items()} | {"added": len(report.added), "removed": len(report.removed)})
        run.log_artifact(manifest_path)
        problems = [r for r in manifest.records if r.status != "ok"]
        for record in problems:
            context.log.warning(f"{record.status}: {record.source_id}: {record.reason}")
        return output(
            manifest,
            run,
            manifest.digest,
            {
                "summary": f"{counts['ok']} photos from {source.description} ({len(report.added)} added, "
                f"{len(report.removed)} removed, {counts['skipped']} skipped, {counts['failed']} failed"
                + (f", {counts['unverified']} unverified)" if counts["unverified"] else ")"),
                "source": source.description,
                **counts,
                "added": len(report.added),
                "changed": len(report.changed),
                "removed": len(report.removed),
                "notes": "\n".join(report.notes) or "none",
                "not_usable": dg.MetadataValue.md(
                    "\n".join(f"- `{r.source_id}`: {r.status}: {r.reason}" for r in problems) or "none"
                ),
                "manifest": dg.MetadataValue.path(str(manifest_path)),
            },
        )
