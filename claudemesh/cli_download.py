"""The `claudemesh` CLI, downloadable from the server itself: `pipx install <server>/cli/<wheel>` on a laptop
without a clone. The wheel is built from this tree's `protocol/` and `peer/` (what pyproject.toml packages) by a
few lines of zip writing, so it needs no build tools and no network, and is rebuilt when the tree changes."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import threading
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render

_lock = threading.Lock()
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # zip entries carry no build time: the same tree gives the same bytes


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    summary: str
    requires_python: str
    dependencies: list[str]
    scripts: dict[str, str]
    packages: list[str]

    @property
    def wheel_name(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-py3-none-any.whl"


def project(source: Path | None = None) -> Project:
    return _project(Path(source or settings.BASE_DIR))


@functools.cache
def _project(source: Path) -> Project:
    """Read once per process: every page's install line needs the wheel's name."""
    data = tomllib.loads((source / "pyproject.toml").read_text(encoding="utf-8"))
    meta = data["project"]
    return Project(
        name=meta["name"], version=meta["version"], summary=meta.get("description", ""),
        requires_python=meta.get("requires-python", ""), dependencies=list(meta.get("dependencies", [])),
        scripts=dict(meta.get("scripts", {})), packages=list(data["tool"]["setuptools"]["packages"]),
    )


def build_wheel(source: Path, out_dir: Path) -> Path:
    """A pure-Python wheel (PEP 427) of the packages pyproject.toml lists, with their console scripts."""
    info = project(source)
    dist_info = f"{info.name.replace('-', '_')}-{info.version}.dist-info"
    files: list[tuple[str, bytes]] = []
    for package in info.packages:
        for path in sorted((source / package).rglob("*.py")):
            if "__pycache__" not in path.parts:
                files.append((path.relative_to(source).as_posix(), path.read_bytes()))
    metadata = ["Metadata-Version: 2.1", f"Name: {info.name}", f"Version: {info.version}", f"Summary: {info.summary}"]
    if info.requires_python:
        metadata.append(f"Requires-Python: {info.requires_python}")
    metadata += [f"Requires-Dist: {dependency}" for dependency in info.dependencies]
    files.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    files.append((f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: claudemesh\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    scripts = "".join(f"{name} = {target}\n" for name, target in info.scripts.items())
    files.append((f"{dist_info}/entry_points.txt", f"[console_scripts]\n{scripts}".encode()))
    record = "".join(f"{name},sha256={_digest(body)},{len(body)}\n" for name, body in files) + f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, body in files:
            entry = zipfile.ZipInfo(name, _FIXED_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            wheel.writestr(entry, body)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / info.wheel_name
    target.write_bytes(buffer.getvalue())
    return target


def current_wheel() -> Path:
    """The wheel of this tree, rebuilt when a packaged file is newer than it."""
    source = Path(settings.BASE_DIR)
    out_dir = Path(settings.VAR_DIR) / "cli"
    info = project(source)
    with _lock:
        target = out_dir / info.wheel_name
        newest = max(p.stat().st_mtime for package in info.packages for p in (source / package).rglob("*.py"))
        if not target.exists() or target.stat().st_mtime < newest:
            build_wheel(source, out_dir)
        return target


def _digest(body: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode()


def wheel_url(origin: str) -> str:
    return f"{origin}/cli/{project().wheel_name}"


def install_command(request: HttpRequest) -> dict[str, str]:
    """Context processor: every page can say how to install the CLI from this very server."""
    try:
        origin = f"{request.scheme}://{request.get_host()}"
    except Exception:  # a host ALLOWED_HOSTS refuses: the page renders without it
        return {}
    return {"cli_install_command": f"pipx install {wheel_url(origin)}", "cli_install_page": f"{origin}/cli/"}


def cli_page(request: HttpRequest) -> HttpResponse:
    origin = f"{request.scheme}://{request.get_host()}"
    return render(request, "cli_install.html", {"wheel_url": wheel_url(origin), "version": project().version})


def cli_wheel(request: HttpRequest, filename: str) -> FileResponse:
    if filename != project().wheel_name:
        raise Http404("no such file")
    return FileResponse(current_wheel().open("rb"), as_attachment=True, filename=filename,
                        content_type="application/zip")
