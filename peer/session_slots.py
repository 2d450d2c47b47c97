"""Stable session identities for long-lived processes (the MCP server).

The broker addresses a direct message to the recipient's *session* key and keeps it until that session
acknowledges it. A push-pipe that restarts with a fresh session key would never receive (or be able to
decrypt) what was sent to its previous key. So each long-lived process takes the lowest free numbered slot
in `<config dir>/sessions/`, guarded by an exclusive `flock`, and reuses that slot's keypair and session id:
a restarted MCP server gets its old identity back, while two concurrent ones still get different ones.

Deviation from the reference (which never writes session keys): the slot file holds a secret with the same
0600 protection as the member key in config.json.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from peer.config import atomic_write_text, ensure_private_dir
from protocol.crypto import CryptoError, SigningKeypair

MAX_SLOTS = 32


@dataclass
class SessionSlot:
    keypair: SigningKeypair
    session_id: str
    lock: IO | None  # held for the life of the process; closing it frees the slot

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None


def claim_slot(config_dir: Path, mesh_slug: str, member_id: str, role: str = "mcp") -> SessionSlot:
    """The broker replaces connections with the same (mesh, sessionId), so the id names the member too:
    two config dirs on one host must never share it."""
    directory = config_dir / "sessions"
    ensure_private_dir(config_dir)
    ensure_private_dir(directory)
    for number in range(MAX_SLOTS):
        base = directory / f"{mesh_slug}.{role}.{number}"
        lock = open(base.with_suffix(base.suffix + ".lock"), "a")  # noqa: SIM115 (held open on purpose)
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        key_file = base.with_suffix(base.suffix + ".json")
        keypair = _load(key_file)
        if keypair is None:
            keypair = SigningKeypair.generate()
            atomic_write_text(key_file, json.dumps({"pubkey": keypair.public_hex, "secretKey": keypair.secret_hex}) + "\n")
        return SessionSlot(keypair=keypair, session_id=f"{socket.gethostname()}:{role}:{member_id}:{number}", lock=lock)
    # Every slot busy: fall back to a throwaway identity rather than refuse to run.
    return SessionSlot(keypair=SigningKeypair.generate(), session_id=f"{socket.gethostname()}:{role}:{member_id}:pid{os.getpid()}",
                       lock=None)


def slot_keypairs(config_dir: Path, mesh_slug: str) -> list[SigningKeypair]:
    """Every stored session keypair of this mesh: a message sealed to an earlier session of this identity (a
    reference sender seals to the session key) can still be opened by whichever session receives it."""
    found = []
    for path in sorted((config_dir / "sessions").glob(f"{mesh_slug}.*.json")):
        keypair = _load(path)
        if keypair is not None:
            found.append(keypair)
    return found


def _load(path: Path) -> SigningKeypair | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keypair = SigningKeypair.from_secret_hex(data["secretKey"])
    except (FileNotFoundError, ValueError, KeyError, TypeError, CryptoError):
        return None
    return keypair if keypair.public_hex == data.get("pubkey") else None
