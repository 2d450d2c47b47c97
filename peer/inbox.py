"""Durable inbox: every inbound message is written to `inbox.sqlite3` in the config dir before it is
acknowledged to the broker, so `check_messages` / `claudemesh inbox` can read it and a restart loses nothing.

Rows are unique per (mesh, messageId): a message the broker re-delivers after a reconnect is stored once.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocol.encoding import iso_ms

INBOX_FILE = "inbox.sqlite3"
# The failure of a keyring message whose key has not arrived: kept, and opened once it does.
WAITING = "waiting for a key from an online member"


def now_iso() -> str:
    """Timestamps of the inbox (received, read), as the wire writes them."""
    return iso_ms(datetime.now(UTC))

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    mesh_id       TEXT NOT NULL,
    mesh_slug     TEXT NOT NULL,
    message_id    TEXT NOT NULL,
    sender_pubkey TEXT NOT NULL,
    sender_name   TEXT,
    sender_member_id TEXT,
    priority      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    plaintext     TEXT,
    failure       TEXT,
    nonce         TEXT NOT NULL,
    ciphertext    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    subtype       TEXT,
    event         TEXT,
    event_data    TEXT,
    topic         TEXT,
    target_spec   TEXT,
    read_at       TEXT,
    UNIQUE (mesh_id, message_id)
);
"""


@dataclass
class InboxMessage:
    mesh_id: str
    mesh_slug: str
    message_id: str
    sender_pubkey: str
    sender_name: str | None
    priority: str
    kind: str
    plaintext: str | None
    failure: str | None
    nonce: str
    ciphertext: str
    created_at: str
    received_at: str
    subtype: str | None = None
    event: str | None = None
    event_data: str | None = None
    sender_member_id: str | None = None  # the person who wrote it (broker's `senderMemberId`), whatever session
    topic: str | None = None  # the topic's name, for a topic message
    target_spec: str | None = None  # where a multicast or topic message was sent (`*`, `@group`, `#<topicId>`)
    read_at: str | None = None
    seq: int | None = None

    def as_record(self) -> dict[str, Any]:
        """The inbox JSON record shape of client.md §1.4 (`claudemesh inbox --json`)."""
        return {
            "messageId": self.message_id,
            "meshId": self.mesh_id,
            "meshSlug": self.mesh_slug,
            "senderPubkey": self.sender_pubkey,
            "senderName": self.sender_name,
            "senderMemberId": self.sender_member_id,
            "priority": self.priority,
            "nonce": self.nonce,
            "ciphertext": self.ciphertext,
            "createdAt": self.created_at,
            "receivedAt": self.received_at,
            "plaintext": self.plaintext,
            "kind": self.kind,
            "decryptError": self.failure,
            **({"topic": self.topic} if self.topic else {}),
            **({"subtype": self.subtype} if self.subtype else {}),
            **({"event": self.event} if self.event else {}),
        }


class Inbox:
    def __init__(self, directory: Path):
        self.path = Path(directory) / INBOX_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(message)")}
        for added in ("sender_member_id", "topic", "target_spec"):  # an inbox written by an earlier version
            if added not in columns:
                self._db.execute(f"ALTER TABLE message ADD COLUMN {added} TEXT")

    def close(self) -> None:
        self._db.close()

    def add(self, message: InboxMessage) -> bool:
        """Store a message; False when this (mesh, messageId) was already stored (a re-delivery)."""
        fields = {k: v for k, v in asdict(message).items() if k not in ("seq", "read_at")}
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cursor = self._db.execute(f"INSERT OR IGNORE INTO message ({columns}) VALUES ({marks})", tuple(fields.values()))
        if cursor.rowcount != 1:
            return False
        message.seq = cursor.lastrowid
        return True

    def unread(self, mesh_slug: str | None = None) -> list[InboxMessage]:
        return self._select("read_at IS NULL", mesh_slug)

    def all(self, mesh_slug: str | None = None) -> list[InboxMessage]:
        return self._select("1=1", mesh_slug)

    def claim_unread(self, when: str, *, priorities: tuple[str, ...] | None = None, limit: int = 20) -> list[InboxMessage]:
        """Take unread messages and mark them read in one step: of several readers of this inbox (sessions, hooks)
        exactly one shows each message."""
        where = "read_at IS NULL AND kind != 'system'"
        params: list = []
        if priorities:
            where += f" AND priority IN ({', '.join('?' for _ in priorities)})"
            params += list(priorities)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            rows = self._db.execute(f"SELECT * FROM message WHERE {where} ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
            messages = [InboxMessage(**dict(row)) for row in rows]
            self._db.executemany("UPDATE message SET read_at = ? WHERE seq = ?", [(when, m.seq) for m in messages])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        for message in messages:
            message.read_at = when
        return messages

    def mark_read(self, messages: list[InboxMessage], when: str) -> None:
        """A message is read once, wherever it was shown: `check_messages`, a channel notification, `watch`, `inbox`."""
        self._db.executemany("UPDATE message SET read_at = ? WHERE seq = ? AND read_at IS NULL",
                             [(when, m.seq) for m in messages if m.seq is not None])
        for message in messages:
            message.read_at = message.read_at or when

    def waiting_for_key(self, mesh_id: str) -> list[InboxMessage]:
        """Messages kept because their scope key had not arrived."""
        rows = self._db.execute("SELECT * FROM message WHERE mesh_id = ? AND failure = ? ORDER BY seq", (mesh_id, WAITING))
        return [InboxMessage(**dict(row)) for row in rows.fetchall()]

    def reopened(self, message: InboxMessage) -> None:
        """A waiting message opened: its text replaces the failure, and it counts as unread again."""
        self._db.execute("UPDATE message SET plaintext = ?, failure = ?, read_at = NULL WHERE seq = ?",
                         (message.plaintext, message.failure, message.seq))
        message.read_at = None

    def _select(self, where: str, mesh_slug: str | None) -> list[InboxMessage]:
        sql = f"SELECT * FROM message WHERE {where}"
        params: tuple = ()
        if mesh_slug:
            sql += " AND mesh_slug = ?"
            params = (mesh_slug,)
        rows = self._db.execute(sql + " ORDER BY seq", params).fetchall()
        return [InboxMessage(**dict(row)) for row in rows]
