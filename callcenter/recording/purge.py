"""Retention: ``callcenter recordings purge`` deletes recordings older than
``retention_days`` (recording.yaml), and logs each file it deleted (id, contact, size,
SHA-256) — the record keeps its attachment entry, so what existed and when it went is
still known. Left-over WAVs (a transcode that failed, a crash mid-call) older than the
retention go too."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("callcenter.recording.purge")
DAY = 86400.0


def purge(directory: Path, retention_days: int, *, now: float | None = None,
          dry_run: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Delete what is past retention; one dict per deleted file (also logged)."""
    cutoff = (now if now is not None else time.time()) - retention_days * DAY
    deleted: list[dict[str, Any]] = []
    index_dir = directory / "index"
    expired: list[tuple[Path, dict[str, Any]]] = []
    kept: set[str] = set()  # files of recordings still within retention
    for entry_path in sorted(index_dir.glob("rec-*.json")) if index_dir.is_dir() else []:
        try:
            entry = json.loads(entry_path.read_text())
            started = float(entry["started_at"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("recording index %s unreadable, left alone: %s", entry_path, exc)
            continue
        if started < cutoff:
            expired.append((entry_path, entry))
        else:
            kept.add(str(entry.get("file", "")))
    for entry_path, entry in expired:
        file = Path(entry.get("file", ""))
        # the attachment store is content-addressed: identical bytes of a younger recording
        # live in the same file, which must stay
        shared = str(file) in kept
        item = {"id": entry.get("id"), "contact_id": entry.get("contact_id"), "file": str(file),
                "size": entry.get("size"), "sha256": entry.get("sha256"),
                "started_at": entry["started_at"]}  # fmt: skip
        if shared:
            item["file_kept"] = "shared with a recording within retention"
        if not dry_run:
            if not shared:
                file.unlink(missing_ok=True)
            entry_path.unlink(missing_ok=True)
        log.info("recording purged%s: %s", " (dry run)" if dry_run else "", json.dumps(item))
        deleted.append(item)
    for wav in sorted(directory.glob("rec-*.wav")):
        st = wav.stat()
        if st.st_mtime < cutoff:
            item = {"id": wav.stem, "file": str(wav), "size": st.st_size, "left_over": True}
            if not dry_run:
                wav.unlink(missing_ok=True)
            log.info("recording purged%s: %s", " (dry run)" if dry_run else "", json.dumps(item))
            deleted.append(item)
    return deleted


def cmd_purge(args: argparse.Namespace) -> int:
    from callcenter.config import load_config
    from callcenter.logs import setup_logging

    setup_logging("INFO", "text")
    cfg = load_config(args.config)
    rec = cfg.recording
    if rec is None:
        print(f"no recording.yaml in {args.config}: nothing is recorded, nothing to purge")
        return 0
    days = args.days if args.days is not None else rec.config.retention_days
    deleted = purge(rec.directory, days, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{verb} {len(deleted)} recording file(s) older than {days} days")
    return 0


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days (at least 1)") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"{days}: the retention must be at least 1 day")
    return days


def register(sub: Any, default_config: Path) -> None:
    r = sub.add_parser("recordings", help="call recordings administration")
    r_sub = r.add_subparsers(dest="recordings_command", required=True)
    p = r_sub.add_parser("purge", help="delete recordings past retention (each deletion is logged)")
    p.add_argument("--config", type=Path, default=default_config)
    p.add_argument("--days", type=_days, default=None, help="override recording.yaml retention_days")
    p.add_argument("--dry-run", action="store_true", help="log what would go, delete nothing")
    p.set_defaults(func=cmd_purge)
