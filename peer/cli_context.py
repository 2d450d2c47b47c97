"""What every `claudemesh` command shares: the argument parser's error rule, the command context (config,
the chosen mesh, a client), and how a connection's failures become exit codes."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from peer.client import MeshClient, cli_session_id
from peer.config import Config, ConfigError, ConfigStore, MeshEntry, session_name
from peer.connection_terms import CLI_CHANNEL, ConnectionUnavailable, HelloOptions, RequestFailed, TerminalClose
from peer.inbox import Inbox
from peer.output import (
    ALREADY_EXISTS,
    FAILURE,
    INTERNAL_ERROR,
    INVALID_ARGS,
    NETWORK_ERROR,
    NOT_FOUND,
    PERMISSION_DENIED,
    CliError,
    Output,
)
from peer.session_slots import SessionSlot, slot_keypairs
from peer.targets import TargetError

CONNECT_TIMEOUT = 10.0
REFUSAL_EXIT_CODES = {
    "forbidden": PERMISSION_DENIED, "unauthorized": PERMISSION_DENIED, "topic_not_found": NOT_FOUND,
    "task_not_found": NOT_FOUND, "invalid_args": INVALID_ARGS, "invalid_cron": INVALID_ARGS,
    "version_conflict": ALREADY_EXISTS, "not_found": NOT_FOUND, "invalid": INVALID_ARGS, "ambiguous": INVALID_ARGS,
    "webhook_exists": ALREADY_EXISTS, "invalid_webhook": INVALID_ARGS, "conflict": ALREADY_EXISTS,
}  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with INVALID_ARGS (3) and a clear message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{message} (see `{self.prog} --help`)", INVALID_ARGS)


class Context:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = Output(bool(getattr(args, "json", False)))
        self.store = ConfigStore()
        self._inbox: Inbox | None = None

    def config(self) -> Config:
        try:
            return self.store.load()
        except ConfigError as exc:
            raise CliError(str(exc), INTERNAL_ERROR, hint=f"fix or remove {self.store.path}") from exc

    def save(self, config: Config) -> None:
        try:
            self.store.save(config)
        except (ConfigError, OSError) as exc:
            raise CliError(f"cannot write {self.store.path}: {exc}", INTERNAL_ERROR) from exc

    def meshes(self, config: Config, *, all_by_default: bool = False) -> list[MeshEntry]:
        if not config.meshes:
            raise CliError("No meshes joined.", FAILURE, hint="run `claudemesh join <invite link>` first")
        slug = getattr(self.args, "mesh", None)
        if slug:
            mesh = config.find(slug)
            if mesh is None:
                joined = ", ".join(m.slug for m in config.meshes)
                raise CliError(f'Mesh "{slug}" not found. Joined: {joined}', FAILURE)
            return [mesh]
        if len(config.meshes) == 1 or all_by_default:
            return list(config.meshes)
        joined = ", ".join(m.slug for m in config.meshes)
        raise CliError(f"several meshes joined ({joined}); choose one with --mesh <slug>", INVALID_ARGS)

    def mesh(self, config: Config) -> MeshEntry:
        return self.meshes(config)[0]

    def inbox(self) -> Inbox:
        return self.shared_inbox()

    def client(self, mesh: MeshEntry, config: Config, *, inbox: Inbox | None = None, long_lived: bool = False,
               groups: bool = False, slot: SessionSlot | None = None) -> MeshClient:
        options = HelloOptions(
            display_name=session_name(config, mesh),
            session_id=slot.session_id if slot else cli_session_id(),
            groups=config_groups(config) if groups else [],
            # One-shot verbs announce a CLI channel so name lookups prefer the long-lived session.
            channel="claude-code" if long_lived else CLI_CHANNEL,
            fail_fast=not long_lived,
        )
        # Any connection may be handed queued messages, so every one stores them before acknowledging.
        return MeshClient(mesh, options, inbox=inbox or self.shared_inbox(), session=slot.keypair if slot else None,
                          spare_keys=partial(slot_keypairs, self.store.directory, mesh.slug))

    def shared_inbox(self) -> Inbox:
        if self._inbox is None:
            self._inbox = Inbox(self.store.directory)
        return self._inbox


def config_groups(config: Config) -> list[dict[str, str]]:
    groups = config.settings.get("groups") or []
    return [g for g in groups if isinstance(g, dict) and isinstance(g.get("name"), str)]


async def with_client(ctx: Context, mesh: MeshEntry, config: Config, action: Callable[[MeshClient], Awaitable[Any]],
                      **kwargs) -> Any:
    client = ctx.client(mesh, config, **kwargs)
    client.start()
    try:
        await client.connection.wait_open(CONNECT_TIMEOUT)
        return await action(client)
    finally:
        await client.close()


def run_on_mesh(ctx: Context, action: Callable[[MeshClient], Awaitable[Any]]) -> Any:
    """One-shot: connect to the mesh `--mesh` names (or the only one), run `action(client)`, disconnect."""
    config = ctx.config()
    return run_async(with_client(ctx, ctx.mesh(config), config, action))


DEFAULT_DEADLINE_SECONDS = 30.0


def command_deadline() -> float:
    """Every one-shot command gives up after this long (`CLAUDEMESH_TIMEOUT`, seconds; docs/peer.md)."""
    try:
        value = float(os.environ.get("CLAUDEMESH_TIMEOUT", "") or DEFAULT_DEADLINE_SECONDS)
    except ValueError:
        return DEFAULT_DEADLINE_SECONDS
    return value if value > 0 else DEFAULT_DEADLINE_SECONDS


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


async def _bounded(coro: Awaitable[Any], deadline: float | None) -> Any:
    """`coro` until it ends, the deadline passes, or SIGTERM/SIGINT arrives; whichever comes first ends it."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    received: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda s=signum: (received.append(s), task.cancel()))
    try:
        return await (asyncio.wait_for(coro, deadline) if deadline is not None else coro)
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def run_async(coro: Awaitable[Any], *, forever: bool = False) -> Any:
    """Run one command's coroutine: bounded by the command deadline (unless `forever`, as `watch`), ended by a
    signal, its failures turned into CLI errors with their exit codes."""
    deadline = None if forever else command_deadline()
    try:
        return asyncio.run(_bounded(coro, deadline))
    except Interrupted as exc:
        raise CliError(f"interrupted ({exc})", 128 + exc.signum) from None
    except TimeoutError as exc:
        raise CliError(f"gave up after {deadline:g}s (CLAUDEMESH_TIMEOUT)", NETWORK_ERROR,
                       hint="the broker is slow or unreachable; `claudemesh doctor`") from exc
    except TerminalClose as exc:
        raise CliError(str(exc), FAILURE) from exc
    except ConnectionUnavailable as exc:
        raise CliError(str(exc), NETWORK_ERROR, hint="check the broker URL and your network; `claudemesh doctor`") from exc
    except RequestFailed as exc:
        code = REFUSAL_EXIT_CODES.get(exc.code, FAILURE)
        raise CliError(f"broker refused: {exc}", code, code=exc.code) from exc
    except TargetError as exc:
        code = INVALID_ARGS if exc.kind in ("ambiguous", "invalid") else NOT_FOUND
        raise CliError(str(exc), code, code=exc.kind) from exc
    except ValueError as exc:  # a message or envelope that cannot be built
        raise CliError(str(exc), FAILURE) from exc




def split_list(text: str | None) -> list[str]:
    """A comma list as given on the command line."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]
