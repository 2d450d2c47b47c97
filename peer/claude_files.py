"""Claude Code's JSON files, edited so that uninstall can undo install exactly: read and validate, back up before
the first change, write atomically, restore the pre-install bytes when nobody edited the file since, and the
install record that remembers what install created."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peer.config import atomic_write_bytes, atomic_write_text, ensure_private_dir

STATE_FILE = "install-state.json"  # remembers what install created, so uninstall can undo exactly that


class SetupError(Exception):
    """Claude Code's files could not be read or written."""


@dataclass
class SetupReport:
    changes: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- json files -------------------------------------------------------------------------------------------


def read_json(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(data, original text); (None, None) when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise SetupError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise SetupError(f"{path} is not valid JSON ({exc}); fix it by hand, nothing was changed") from exc
    if not isinstance(data, dict):
        raise SetupError(f"{path} does not hold a JSON object; nothing was changed")
    return data, text


def write_json(path: Path, data: dict[str, Any], mode: int) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n", mode=mode)


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def tracked_write(path: Path, data: dict[str, Any], mode: int, state: dict[str, Any], state_dir: Path,
                   report: SetupReport) -> None:
    """Back up `path`, write `data`, and remember both so uninstall can put the exact bytes back.

    The backup taken before our first write stays the restore point as long as nobody else edits the file
    after we write it; if someone does, the next write re-bases on their version.
    """
    files = state.setdefault("files", {})
    record = files.get(str(path))
    current_sha = _sha256(path)
    if record is None or record.get("written_sha256") != current_sha:
        backup = None
        if current_sha is not None:
            backups = state_dir / "backups"
            backups.mkdir(parents=True, exist_ok=True)
            backup = backups / f"{path.name}.pre-claudemesh.{int(time.time() * 1000)}"
            shutil.copy2(path, backup)
            report.backups.append(str(backup))
        record = {"backup": str(backup) if backup else None}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data, mode)
    record["written_sha256"] = _sha256(path)
    files[str(path)] = record


def restore_untouched(path: Path, state: dict[str, Any], report: SetupReport) -> bool:
    """Put back the exact pre-install bytes when the file is still exactly what install wrote."""
    record = (state.get("files") or {}).get(str(path))
    if not record or record.get("written_sha256") != _sha256(path):
        return False
    backup = record.get("backup")
    if backup is None:
        path.unlink()
        report.changes.append(f"removed {path} (install created it)")
        return True
    if not Path(backup).exists():
        return False
    mode = path.stat().st_mode & 0o777
    atomic_write_bytes(path, Path(backup).read_bytes(), mode)
    report.changes.append(f"restored {path} to its pre-install bytes")
    return True


def file_mode(path: Path, default: int) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return default


# --- install state ----------------------------------------------------------------------------------------


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def load_state(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads(state_path(state_dir).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def save_state(state_dir: Path, state: dict[str, Any]) -> None:
    ensure_private_dir(state_dir)
    atomic_write_text(state_path(state_dir), json.dumps(state, indent=2) + "\n")
