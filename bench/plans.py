"""Pre-built send plans: every envelope is encrypted and every frame serialised before the clock starts."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from bench.peers import SendPlan
from bench.roster import Roster
from protocol.crypto import box_encrypt


@dataclass(frozen=True)
class PlanSpec:
    """What each sender sends; picklable so child processes build the frames for their own senders."""

    senders: tuple[int, ...]
    recipients: tuple[int, ...]
    msgs_per_sender: int
    run_tag: str
    seed: int = 1
    size: int = 64
    priority: str = "now"
    client_message_id: bool = True
    paced: bool = False  # encrypt each envelope as it is sent (like the reference CLI), not before the clock starts

    @property
    def planned_sends(self) -> int:
        return len(self.senders) * self.msgs_per_sender


def build_plan(roster: Roster, spec: PlanSpec, only: Iterable[int] | None = None) -> SendPlan:
    """Direct messages from each sender to random other recipients of its mesh, as real crypto_box envelopes.

    Targets are drawn from a per-sender RNG, so the plan is the same however senders are split across
    processes. Client ids are "<sender>-<n>" like the reference load test; clientMessageId carries the run tag
    so a later run is never deduplicated against an earlier one.
    """
    wanted = set(spec.senders if only is None else only) & set(spec.senders)
    plan: SendPlan = {}
    for sender in sorted(wanted):
        rng = random.Random(f"{spec.seed}-{sender}")
        me = roster.members[sender]
        # Only members of the sender's own mesh can be addressed (a multi-mesh roster holds several meshes).
        others: Sequence[int] = [r for r in spec.recipients
                                 if roster.members[r].mesh_id == me.mesh_id and roster.members[r].pubkey != me.pubkey]
        if not others:
            raise ValueError("a sender needs at least one other peer of its mesh to send to")
        frames = []
        for n in range(spec.msgs_per_sender):
            target = roster.members[rng.choice(others)]
            client_id = f"{sender}-{n}"
            make = partial(_send_frame, spec, me.secret_key, target.pubkey, sender, n)
            frames.append((client_id, make if spec.paced else make()))
        plan[sender] = frames
    return plan


def _send_frame(spec: PlanSpec, secret_key: str, target_pubkey: str, sender: int, n: int) -> str:
    text = f"bench {spec.run_tag} {sender}-{n} ".encode()
    plaintext = text + b"x" * max(0, spec.size - len(text))
    nonce, ciphertext = box_encrypt(plaintext, recipient_ed25519_hex=target_pubkey, sender_secret_hex=secret_key)
    frame = {"type": "send", "id": f"{sender}-{n}", "targetSpec": target_pubkey, "priority": spec.priority,
             "nonce": nonce, "ciphertext": ciphertext}
    if spec.client_message_id:
        frame["clientMessageId"] = f"b{spec.run_tag}.{sender}.{n}"
    return json.dumps(frame)
