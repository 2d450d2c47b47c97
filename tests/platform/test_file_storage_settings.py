"""Where shared files are stored is the environment's choice: a directory under the var dir by default, an
S3-compatible bucket (through django-storages) when FILES_S3_BUCKET is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import django, json; django.setup(); from django.core.files.storage import storages; s = storages['files']; "
         "print(json.dumps({'cls': type(s).__module__ + '.' + type(s).__name__, 'bucket': getattr(s, 'bucket_name', None), "
         "'endpoint': getattr(s, 'endpoint_url', None), 'location': str(getattr(s, 'location', ''))}))")


def probe(tmp_path: Path, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FILES_S3_")}
    full.update(DJANGO_SETTINGS_MODULE="claudemesh.settings", CLAUDEMESH_VAR_DIR=str(tmp_path / "var"), **env)
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=full, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_files_go_under_the_var_dir_by_default(tmp_path):
    chosen = probe(tmp_path)
    assert chosen["cls"] == "django.core.files.storage.filesystem.FileSystemStorage"
    assert chosen["location"] == str(tmp_path / "var" / "files")


def test_a_bucket_in_the_environment_selects_the_s3_backend(tmp_path):
    chosen = probe(tmp_path, FILES_S3_BUCKET="team-files", FILES_S3_ENDPOINT_URL="http://127.0.0.1:9000",
                   FILES_S3_ACCESS_KEY_ID="k", FILES_S3_SECRET_ACCESS_KEY="s")
    assert chosen["cls"] == "storages.backends.s3.S3Storage"
    assert (chosen["bucket"], chosen["endpoint"]) == ("team-files", "http://127.0.0.1:9000")
