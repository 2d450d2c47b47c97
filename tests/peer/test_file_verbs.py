"""`claudemesh file share|list|get|rm|status|grant` against a real server process: a 50 MiB file shared to a member
and to a group comes back byte for byte while the server's memory stays flat (it streams both ways), the stored
bytes are ciphertext only, and someone it was not shared with gets neither the key nor the bytes."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from tests.peer.test_topic_verbs import join

pytestmark = pytest.mark.slow
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class RssPeak:
    """The highest resident size of a process while the block runs, sampled every 10 ms."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = self.start = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.start = self.peak = rss_bytes(self.pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def rise(self) -> int:
        return self.peak - self.start


def stored_files(e2e_server) -> list[Path]:
    return [p for p in (Path(e2e_server.env["CLAUDEMESH_VAR_DIR"]) / "files").rglob("*") if p.is_file()]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def test_a_50_mib_file_round_trips_to_a_member_and_a_group_with_flat_server_memory(e2e_server, make_peer, tmp_path):
    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    big = tmp_path / "dump.bin"
    with big.open("wb") as handle:
        for _ in range(50):
            handle.write(os.urandom(MIB))
    pid = e2e_server.process.proc.pid
    with RssPeak(pid) as upload:
        shared = alice.json("file", "share", str(big), "--to", "bob")
    assert shared["size"] == 50 * MIB and shared["encrypted"] is True
    out = tmp_path / "bob-got"
    out.mkdir()
    with RssPeak(pid) as download:
        got = bob.json("file", "get", shared["fileId"], "-o", str(out))
    assert Path(got["path"]) == out / "dump.bin" and sha256(out / "dump.bin") == sha256(big)
    print(f"server RSS rise: upload {upload.rise / MIB:.1f} MiB, download {download.rise / MIB:.1f} MiB")
    assert upload.rise < 10 * MIB and download.rise < 10 * MIB
    # to a group: bob is in @eng (a live session says so), alice shares there
    bob.run("group", "join", "eng")
    bob.watch()
    with RssPeak(pid) as group_upload:
        to_group = alice.json("file", "share", str(big), "--to", "@eng")
    (out / "dump.bin").unlink()
    with RssPeak(pid) as group_download:
        bob.json("file", "get", to_group["fileId"], "-o", str(out))
    assert sha256(out / "dump.bin") == sha256(big)
    assert group_upload.rise < 10 * MIB and group_download.rise < 10 * MIB
    # the storage holds ciphertext only: no 4 KiB run of the file appears in what the server stored
    sample = big.read_bytes()[MIB:MIB + 4096]
    stored = [p for p in stored_files(e2e_server) if p.stat().st_size > 50 * MIB]
    assert len(stored) >= 2 and all(sample not in p.read_bytes() for p in stored)


def test_a_non_recipient_gets_neither_key_nor_bytes_and_the_owner_can_grant_and_delete(e2e_server, make_peer, tmp_path):
    alice, bob, carol = (join(e2e_server, make_peer, name) for name in ("alice", "bob", "carol"))
    note = tmp_path / "notes.txt"
    note.write_text("the release is friday\n" * 100)
    shared = alice.json("file", "share", str(note), "--to", "bob")
    assert [f["name"] for f in bob.json("file", "list")["files"]] == ["notes.txt"]
    assert carol.json("file", "list")["files"] == []  # not shared with carol: not even listed
    refused = carol.run("file", "get", shared["fileId"], "-o", str(tmp_path), check=False)
    assert refused.returncode == 7 and "file not targeted at you" in refused.stderr
    got = bob.json("file", "get", shared["fileId"], "-o", str(tmp_path / "bob.txt"))
    assert Path(got["path"]).read_text() == note.read_text()
    assert [a["peerName"] for a in alice.json("file", "status", shared["fileId"])["accesses"]] == ["bob"]
    assert alice.json("file", "grant", shared["fileId"], "--to", "carol")["to"] == "carol"
    carol.json("file", "get", shared["fileId"], "-o", str(tmp_path / "carol.txt"))
    assert (tmp_path / "carol.txt").read_text() == note.read_text()
    not_owner = bob.run("file", "rm", shared["fileId"], check=False)
    assert not_owner.returncode == 7
    alice.json("file", "rm", shared["fileId"])
    gone = bob.run("file", "get", shared["fileId"], check=False)
    assert gone.returncode == 5 and "file not found" in gone.stderr
    everyone = alice.json("file", "share", str(note), "--to", "*")  # through the keyring
    carol.json("file", "get", everyone["fileId"], "-o", str(tmp_path / "all.txt"))
    assert (tmp_path / "all.txt").read_text() == note.read_text()


def test_claude_shares_from_and_fetches_into_its_working_directory_only(e2e_server, make_peer, tmp_path):
    import asyncio

    from tests.support.mcp_client import mcp_session

    alice, bob = join(e2e_server, make_peer, "alice"), join(e2e_server, make_peer, "bob")
    project = tmp_path / "project"
    project.mkdir()
    (project / "patch.diff").write_text("--- a\n+++ b\n@@ fix @@\n")
    (tmp_path / "secret.txt").write_text("not yours")
    from_alice = alice.json("file", "share", str(project / "patch.diff"), "--to", "bob")

    async def scenario():
        async with mcp_session(bob.env, cwd=str(project)) as mcp:
            await mcp.wait_open()
            text, error = await mcp.call("share_file", {"path": "../secret.txt", "to": "alice"})
            assert error and "outside the working directory" in text
            text, error = await mcp.call("fetch_file", {"action": "list"})
            assert from_alice["fileId"] in text and "patch.diff" in text and not error
            text, error = await mcp.call("fetch_file", {"id": from_alice["fileId"]})
            assert not error and "patch (1).diff" in text  # patch.diff exists here: never overwritten
            text, error = await mcp.call("fetch_file", {"id": from_alice["fileId"], "path": "/etc"})
            assert error and "outside the working directory" in text
            text, error = await mcp.call("share_file", {"path": "patch.diff", "to": "alice"})
            assert not error and "Shared patch.diff" in text

    asyncio.run(scenario())
    assert (project / "patch (1).diff").read_text() == "--- a\n+++ b\n@@ fix @@\n"
    assert not list(project.glob(".claudemesh-*"))
    assert [f["name"] for f in alice.json("file", "list", "--from", "bob")["files"]] == ["patch.diff"]
