"""Files over the socket and HTTP (protocol.md §5.17, §6.10): registration with wrapped keys, the streamed upload
with its size checks and one-time token, download links that die after their lifetime, who may fetch, grant and
delete, the per-file and per-mesh limits, recipients' `file-read` grants, and expiry. Real storage, real crypto."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from meshes.models import SharedFile
from meshes.services.files import files_expire
from protocol.crypto import box_encrypt
from protocol.encoding import b64_encode
from protocol.files import FileMeta, StreamOpener, new_file_key, seal_stream, sealed_key_text, sealed_size
from tests.support.sockets import db

pytestmark = pytest.mark.django_db(transaction=True)
PLAIN = b"build 42 passed; logs attached\n" * 5000


@pytest.fixture(autouse=True)
def file_storage(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "files": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "files")}}}
    return tmp_path / "files"


async def request(sock, frame: dict, reply_type: str) -> dict:
    req_id = f"r-{frame['type']}"
    await sock.send({**frame, "_reqId": req_id})
    return await sock.expect(lambda f: f.get("_reqId") == req_id and f["type"] in (reply_type, "error"))


def http() -> httpx.AsyncClient:
    from claudemesh.asgi import application

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://testserver")


def wrap(key: bytes, *, owner, recipient_pubkey: str) -> str:
    nonce, ciphertext = box_encrypt(b64_encode(key).encode(), recipient_ed25519_hex=recipient_pubkey,
                                    sender_secret_hex=owner.keypair.secret_hex)
    return sealed_key_text(nonce, ciphertext)


async def share(sock, owner, to, *, data: bytes = PLAIN, **extra) -> tuple[dict, bytes, bytes]:
    """Register and upload `data` from `owner` to `to`: (registration, ciphertext, key)."""
    key = new_file_key()
    meta = FileMeta("build.log", len(data), "text/plain")
    sealed = b"".join(seal_stream(iter([data]), meta=meta, key=key, mesh_id=owner.member.mesh_id))
    keys = [{"peerPubkey": to.pubkey, "sealedKey": wrap(key, owner=owner, recipient_pubkey=to.pubkey)}]
    reg = await request(sock, {"type": "register_file", "name": "build.log", "size": len(data), "sealedSize": len(sealed),
                               "targetSpec": to.pubkey, "keys": keys, **extra}, "file_registered")
    return reg, sealed, key


async def upload(reg: dict, body: bytes, **headers) -> httpx.Response:
    async with http() as client:
        return await client.post("/upload", content=body,
                                 headers={"Authorization": f"Bearer {reg['uploadToken']}", **headers})


async def test_a_shared_file_round_trips_and_its_download_link_dies_after_its_lifetime(make_member, connect, settings,
                                                                                      file_storage):
    settings.FILES_URL_SECONDS = 1
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    reg, sealed, key = await share(a, alice, bob)
    stored = await upload(reg, sealed)
    assert stored.status_code == 200 and stored.json() == {"ok": True, "fileId": reg["fileId"]}
    on_disk = [p for p in Path(file_storage).rglob("*") if p.is_file()]
    assert [p.read_bytes() for p in on_disk] == [sealed] and PLAIN[:64] not in sealed  # ciphertext only
    got = await request(b, {"type": "get_file", "fileId": reg["fileId"]}, "file_url")
    assert got["name"] == "build.log" and got["encrypted"] is True and got["sealedBy"] == alice.pubkey
    assert got["sealedKey"].startswith("cmf1:") and "/download/" in got["url"]
    path = got["url"].split("testserver", 1)[-1] if "testserver" in got["url"] else "/" + got["url"].split("/", 3)[3]
    async with http() as client:
        fetched = await client.get(path)
        assert fetched.status_code == 200 and fetched.headers["cache-control"] == "private, max-age=60"
        opener = StreamOpener(key=key, mesh_id=alice.member.mesh_id)
        assert opener.feed(fetched.content) == PLAIN and opener.finish().name == "build.log"
        await asyncio.sleep(2.1)
        expired = await client.get(path)
        assert expired.status_code == 403 and "expired" in expired.json()["error"]
        forged = await client.get(path.replace("token=", "token=x"))
        assert forged.status_code == 403
    listed = await request(b, {"type": "list_files"}, "file_list")
    assert [(f["id"], f["name"], f["size"], f["uploadedBy"]) for f in listed["files"]] == [
        (reg["fileId"], "build.log", len(PLAIN), "alice")]
    status = await request(a, {"type": "file_status", "fileId": reg["fileId"]}, "file_status_result")
    assert [x["peerName"] for x in status["accesses"]] == ["bob"]
    info = await request(a, {"type": "mesh_info"}, "mesh_info_result")
    assert info["fileCount"] == 1


async def test_a_non_recipient_gets_no_key_no_link_and_no_listing(make_member, connect):
    alice, bob, carol = await db(make_member)("alice"), await db(make_member)("bob"), await db(make_member)("carol")
    a, c = await connect(alice), await connect(carol)
    reg, sealed, _ = await share(a, alice, bob)
    await upload(reg, sealed)
    refused = await request(c, {"type": "get_file", "fileId": reg["fileId"]}, "file_url")
    assert (refused["code"], refused["message"]) == ("forbidden", "file not targeted at you")
    assert (await request(c, {"type": "list_files"}, "file_list"))["files"] == []
    assert (await request(c, {"type": "file_status", "fileId": reg["fileId"]}, "x"))["code"] == "forbidden"
    missing = await request(c, {"type": "get_file", "fileId": "nope"}, "file_url")
    assert (missing["code"], missing["message"]) == ("not_found", "file not found")


async def test_uploads_past_their_length_are_413_and_tokens_work_once(make_member, connect, file_storage):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    reg, sealed, _ = await share(a, alice, bob)
    too_long = await upload(reg, sealed + b"x")
    assert too_long.status_code == 413 and too_long.json()["code"] == "file_too_large"
    assert not [p for p in Path(file_storage).rglob("*") if p.is_file()]  # nothing half-stored
    short = await upload(reg, sealed[:-1])
    assert short.status_code == 400 and short.json()["code"] == "size_mismatch"
    reg, sealed, _ = await share(a, alice, bob)
    assert (await upload(reg, sealed)).status_code == 200
    again = await upload(reg, sealed)
    assert again.status_code == 409 and again.json()["code"] == "already_uploaded"
    async with http() as client:
        assert (await client.post("/upload", content=b"x", headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_the_file_size_limit_and_the_mesh_quota_refuse_clearly(make_member, connect, settings):
    settings.FILES_MAX_BYTES = 1024 * 1024
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a = await connect(alice)
    big = await request(a, {"type": "register_file", "name": "huge.bin", "sealedSize": 2 * 1024 * 1024,
                            "targetSpec": bob.pubkey, "keys": [{"peerPubkey": bob.pubkey, "sealedKey": "cmf1:a:b"}]},
                        "file_registered")
    assert (big["code"], big["message"]) == ("file_too_large", "file too large (max 1MB)")
    settings.FILES_MESH_QUOTA_BYTES = sealed_size(FileMeta("build.log", len(PLAIN), "text/plain")) + 100
    reg, sealed, _ = await share(a, alice, bob)
    await upload(reg, sealed)
    over, _, _ = await share(a, alice, bob)
    assert over["code"] == "quota_exceeded" and "quota" in over["message"]


async def test_only_the_owner_grants_and_the_owner_or_an_admin_deletes(make_member, connect, file_storage):
    alice, bob, carol = await db(make_member)("alice"), await db(make_member)("bob"), await db(make_member)("carol")
    admin = await db(make_member)("admin", "admin")
    a, b, c, ad = await connect(alice), await connect(bob), await connect(carol), await connect(admin)
    reg, sealed, key = await share(a, alice, bob)
    await upload(reg, sealed)
    grant = {"type": "grant_file_access", "fileId": reg["fileId"], "peerPubkey": carol.pubkey,
             "sealedKey": wrap(key, owner=bob, recipient_pubkey=carol.pubkey)}
    assert (await request(b, grant, "grant_file_access_ok"))["message"] == "only the file owner can grant access"
    grant["sealedKey"] = wrap(key, owner=alice, recipient_pubkey=carol.pubkey)
    assert (await request(a, grant, "grant_file_access_ok"))["peerPubkey"] == carol.pubkey
    assert (await request(c, {"type": "get_file", "fileId": reg["fileId"]}, "file_url"))["sealedBy"] == alice.pubkey
    refused = await request(b, {"type": "delete_file", "fileId": reg["fileId"]}, "ack")
    assert refused["code"] == "forbidden"
    deleted = await request(ad, {"type": "delete_file", "fileId": reg["fileId"]}, "ack")
    assert {k: deleted[k] for k in ("id", "messageId", "queued")} == {"id": reg["fileId"], "messageId": reg["fileId"],
                                                                       "queued": False}
    assert not [p for p in Path(file_storage).rglob("*") if p.is_file()]


async def test_a_recipient_refusing_file_read_is_not_sent_files_and_ephemeral_files_expire(make_member, connect,
                                                                                           file_storage):
    alice, bob = await db(make_member)("alice"), await db(make_member)("bob")
    a, b = await connect(alice), await connect(bob)
    await request(b, {"type": "set_grants", "grants": {alice.pubkey: ["read", "dm"]}}, "grants_result")
    refused, _, _ = await share(a, alice, bob)
    assert (refused["code"], refused["message"]) == ("forbidden", "bob does not accept files from you")
    await request(b, {"type": "set_grants", "grants": {alice.pubkey: None}}, "grants_result")
    reg, sealed, _ = await share(a, alice, bob, persistent=False)
    await upload(reg, sealed)
    row = await db(SharedFile.objects.get)(pk=reg["fileId"])
    assert row.expires_at is not None
    assert await db(files_expire)(now=timezone.now() + timedelta(days=2)) == 1
    assert not [p for p in Path(file_storage).rglob("*") if p.is_file()]
    gone = await request(b, {"type": "get_file", "fileId": reg["fileId"]}, "file_url")
    assert gone["code"] == "not_found"
