"""config.json: permissions, atomic writes, several meshes, unknown keys kept (client.md §4)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from peer import config as config_module
from peer.config import Config, ConfigError, ConfigStore, MeshEntry, http_origin
from protocol.crypto import SigningKeypair


def make_entry(slug: str) -> MeshEntry:
    keys = SigningKeypair.generate()
    return MeshEntry(mesh_id=f"id-{slug}", member_id=f"m-{slug}", slug=slug, name=slug, pubkey=keys.public_hex,
                     secret_key=keys.secret_hex, broker_url="ws://127.0.0.1:1/ws", joined_at="2026-01-01T00:00:00.000Z")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_missing_file_is_an_empty_config(tmp_path):
    assert ConfigStore(tmp_path / "cfg").load().meshes == []


def test_save_creates_private_dir_and_file(tmp_path):
    store = ConfigStore(tmp_path / "cfg")
    store.save(Config(meshes=[make_entry("a")]))
    assert mode(store.directory) == 0o700
    assert mode(store.path) == 0o600
    assert store.permission_problems() == []
    text = store.path.read_text()
    assert text.endswith("\n") and json.loads(text)["version"] == 1


def test_several_meshes_each_with_its_own_key(tmp_path):
    store = ConfigStore(tmp_path)
    config = Config()
    for slug in ("alpha", "beta", "gamma"):
        config.upsert(make_entry(slug))
    store.save(config)
    loaded = store.load()
    assert [m.slug for m in loaded.meshes] == ["alpha", "beta", "gamma"]
    assert len({m.pubkey for m in loaded.meshes}) == 3
    assert all(not m.key_problems() for m in loaded.meshes)


def test_upsert_replaces_same_slug(tmp_path):
    config = Config()
    config.upsert(make_entry("a"))
    replacement = make_entry("a")
    config.upsert(replacement)
    assert config.meshes == [replacement]


def test_unknown_entry_keys_survive_and_unknown_top_level_keys_are_dropped(tmp_path):
    store = ConfigStore(tmp_path)
    entry = make_entry("a").to_json()
    entry["futureField"] = {"x": 1}
    store.path.write_text(json.dumps({"version": 1, "meshes": [entry], "displayName": "bob", "junk": 1}))
    store.save(store.load())
    data = json.loads(store.path.read_text())
    assert data["meshes"][0]["futureField"] == {"x": 1}
    assert data["displayName"] == "bob" and "junk" not in data


def test_invalid_json_is_a_clear_error(tmp_path):
    store = ConfigStore(tmp_path)
    store.path.write_text("{not json")
    with pytest.raises(ConfigError, match="Failed to load"):
        store.load()


def test_failed_write_leaves_previous_file_and_no_temp_file(tmp_path, monkeypatch):
    store = ConfigStore(tmp_path)
    store.save(Config(meshes=[make_entry("a")]))
    before = store.path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(config_module.os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.save(Config(meshes=[make_entry("b")]))
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_loose_permissions_are_reported(tmp_path):
    store = ConfigStore(tmp_path / "cfg")
    store.save(Config())
    os.chmod(store.path, 0o644)
    assert any("0o600" in problem for problem in store.permission_problems())


def test_key_problems_detects_mismatched_secret():
    entry = make_entry("a")
    entry.secret_key = SigningKeypair.generate().secret_hex
    assert entry.key_problems() == ["secretKey does not match pubkey"]


def test_config_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDEMESH_CONFIG_DIR", str(tmp_path / "elsewhere"))
    assert ConfigStore().directory == tmp_path / "elsewhere"


@pytest.mark.parametrize(
    ("ws", "http"),
    [
        ("wss://ic.claudemesh.com/ws", "https://ic.claudemesh.com"),
        ("ws://127.0.0.1:8000/ws", "http://127.0.0.1:8000"),
        ("wss://example.com/mesh/ws/", "https://example.com/mesh"),
    ],
)
def test_http_origin(ws, http):
    assert http_origin(ws) == http
