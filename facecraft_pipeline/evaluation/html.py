"""What a person looks at: one self-contained HTML file (images inlined) and a Markdown summary.

The HTML shows the champion and why, the baselines, the score table, the lineage, then for each
model and prompt a table with one row per seed and one column per checkpoint: the same starting
noise drawn by every checkpoint, side by side.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from facecraft_pipeline.evaluation.gallery import CheckpointEntry, Gallery

COLUMNS = ("model", "step", "faces", "identity", "vs baselines", "centroid", "same person", "diversity", "one face",
           "prompts followed", "eligible")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def table_rows(gallery: Gallery) -> list[dict[str, Any]]:
    """The score table, one dict per checkpoint, with plain values (for Markdown, HTML and Dagster)."""
    rows = []
    for entry in gallery.entries:
        s = entry.score
        rows.append({
            "model": s.model, "step": s.step, "faces": f"{s.faces}/{s.images}",
            "identity": None if s.identity_mean is None else round(s.identity_mean, 4),
            "identity_min": None if s.identity_min is None else round(s.identity_min, 4),
            "identity_max": None if s.identity_max is None else round(s.identity_max, 4),
            "vs baselines": None if entry.relative is None else round(entry.relative, 3),
            "centroid": None if s.centroid_mean is None else round(s.centroid_mean, 4),
            "same person": round(s.same_person_share, 3), "diversity": None if s.diversity is None else round(s.diversity, 4),
            "one face": round(s.one_face_share, 3),
            "prompts followed": None if s.prompt_following is None else round(s.prompt_following, 3),
            "eligible": "yes" if entry.eligible else f"no: {entry.why}",
            "champion": gallery.champion is not None and (gallery.champion.model, gallery.champion.step) == (s.model, s.step),
            "embedder": s.embedder,
        })
    return rows


def baseline_rows(gallery: Gallery) -> list[dict[str, Any]]:
    rows = []
    for b in (gallery.baselines.owner, gallery.baselines.others):
        rows.append({"baseline": b.name, "faces": b.count, "identity": _fmt(b.identity_mean), "min": _fmt(b.identity_min),
                     "max": _fmt(b.identity_max), "centroid": _fmt(b.centroid_mean), "same person": _share(b.same_person_share),
                     "what": b.description})
    return rows


def write_markdown(gallery: Gallery, path: Path) -> Path:
    champion = gallery.champion
    lines = [f"# Evaluation sweep ({len(gallery.entries)} checkpoints, embedder {gallery.baselines.embedder})", "",
             f"Champion: **{champion.model + ' step ' + str(champion.step) if champion else 'none'}** ({gallery.champion_reason}).", "",
             f"Scored against: {gallery.info.get('reference', '')}. Detector: {gallery.info.get('detector', {}).get('source', '')}.", ""]
    notes = gallery.info.get("notes", {})
    lines += [f"- {name}: {note}" for name, note in notes.items() if note] + [""]
    lines += ["## Baselines (same embedder, real photos)", "", "| baseline | faces | identity | min | max | same person | what |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['baseline']} | {r['faces']} | {r['identity']} | {r['min']} | {r['max']} | {r['same person']} | {r['what']} |"
              for r in baseline_rows(gallery)]
    lines += ["", "## Scores", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in table_rows(gallery):
        cells = [row[c] for c in COLUMNS]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + (" **champion**" if row["champion"] else "") + " |")
    lines += [""] + [f"## {m.name}\n\n![{m.name}]({m.grid.relative_to(gallery.folder)})\n" for m in gallery.models]
    path.write_text("\n".join(lines))
    return path


def _img(path: Path, title: str, width: int = 96) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" width="{width}" height="{width}" title="{html.escape(title)}" alt="{html.escape(title)}">'


def _cell_title(entry: CheckpointEntry, number: int) -> str:
    s = entry.image_scores[number]
    if s.best_match is None:
        return f"{entry.score.name} #{s.index}: no face"
    return f"{entry.score.name} #{s.index}: {s.faces} face(s), identity {s.best_match:.3f}, {'same person' if s.same_person else 'not the owner'}"


def _table(headers: list[str], rows: list[list[str]], raw: bool = False) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(gallery: Gallery, path: Path, image_root: Path | None = None) -> Path:
    """One file, no external resources: every image is a data: URI. `image_root` stands in for the gallery folder."""
    root = Path(image_root or gallery.folder)
    local = lambda p: root / Path(p).relative_to(gallery.folder)  # noqa: E731
    champion = gallery.champion
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>FaceCraft evaluation</title><style>",
             "body{font-family:sans-serif;margin:1.5em;background:#fafafa}table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px;text-align:left;vertical-align:top}"
             "tr.champion td{background:#e7f6e7}img{image-rendering:auto;display:block}.muted{color:#666}</style></head><body>",
             "<h1>FaceCraft evaluation sweep</h1>",
             f"<p><b>Champion:</b> {html.escape(champion.model + ' step ' + str(champion.step)) if champion else 'none'}"
             f" &mdash; {html.escape(gallery.champion_reason)}</p>",
             f"<p class='muted'>Embedder {html.escape(gallery.baselines.embedder)}; scored against "
             f"{html.escape(str(gallery.info.get('reference', '')))}; detector {html.escape(str(gallery.info.get('detector', {})))}</p>"]
    for name, note in gallery.info.get("notes", {}).items():
        if note:
            parts.append(f"<p><b>{html.escape(name)}:</b> {html.escape(note)}</p>")
    parts.append("<h2>Baselines</h2>")
    b_rows = baseline_rows(gallery)
    parts.append(_table(list(b_rows[0]), [list(r.values()) for r in b_rows]))
    parts.append("<h2>Scores</h2>")
    rows = table_rows(gallery)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(f"<tr class='{'champion' if r['champion'] else ''}'>" + "".join(
        f"<td>{html.escape('-' if r[c] is None else str(r[c]))}</td>" for c in COLUMNS) + "</tr>" for r in rows)
    parts.append(f"<table><tr>{head}</tr>{body}</table>")
    parts.append("<h2>Lineage</h2>")
    parts.append(_table(["what", "value"], [[k, v] for k, v in _flat(gallery.info.get("lineage", {}))]))
    for model in gallery.models:
        parts.append(f"<h2>{html.escape(model.name)}</h2><p class='muted'>{html.escape(model.note)}</p>")
        entries = model.checkpoints
        prompts = sorted({s.prompt for s in entries[0].image_scores}, key=lambda p: -1 if p is None else p)
        prompt_text = gallery.info.get("prompts", {}).get(model.name, [])
        for prompt in prompts:
            if prompt is not None:
                text = prompt_text[prompt] if prompt < len(prompt_text) else f"prompt {prompt}"
                parts.append(f"<h3>prompt {prompt}: <i>{html.escape(text)}</i></h3>")
            numbers = [i for i, s in enumerate(entries[0].image_scores) if s.prompt == prompt]
            seed = gallery.info.get("settings", {}).get("seed", 0)
            headers = ["noise seed" if prompt is not None else f"latent (seed {seed})"] + [f"step {e.score.step}" for e in entries]
            table = []
            for number in numbers:
                index = entries[0].image_scores[number].index  # GAN latents: row i of one draw; diffusion: seed + i
                cells = [str(seed + index) if prompt is not None else f"z{index}"]
                for e in entries:
                    cells.append(_img(local(e.images[number]), _cell_title(e, number)) if number < len(e.images) else "")
                table.append(cells)
            parts.append(_table(headers, table, raw=True))
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")
    return path


def _flat(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        out: list[tuple[str, str]] = []
        for key, value in data.items():
            out += _flat(value, f"{prefix}{key}.")
        return out
    return [(prefix.rstrip("."), str(data))]
