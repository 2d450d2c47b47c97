"""`python -m bench SCENARIO --roster FILE --url WS_URL [options] [--json]`."""

from __future__ import annotations

import argparse
import asyncio
import json

from bench.procstats import parse_pids
from bench.report import format_table
from bench.roster import load_roster
from bench.scenarios import RunOptions, run_idle, run_traffic

DESCRIPTION = """\
Load harness for a claudemesh broker. Reads a roster ({meshId, members:[{memberId, pubkey, secretKey}]}, or
{meshes:[{meshId, members:[…]}]} for several meshes, e.g. from `manage.py bench_roster [--meshes M] --peers N
--out roster.json`), connects every roster member (hello in its own mesh) over the
wire protocol (hello with deliveryAck; push_ack for every push when the broker supports it), runs one
scenario and reports delivery, duplicates, latencies and the server's CPU and memory.

scenarios:
  burst   every peer sends --msgs direct crypto_box messages to random other peers of its mesh, all at once
  steady  --peers P senders each send --rate msgs/s for --duration s (scheduled; every roster peer receives)
  idle    --connections K connections that only hello and stay, spread evenly over the roster's meshes and
          members (members reused when K exceeds the roster); server RSS per connection
  connect the same, with --connect-concurrency 200 by default: hellos/s and the CPU of one hello

burst --paced sends the way the reference CLI and load test do: each envelope encrypted as it is sent, a 1 ms
pause after every 100 sends, connects in batches of --connect-concurrency (20), plain v0.1 hellos (no deliveryAck).
Every run reports the broker's, Postgres's and Redis's CPU per delivered message (cpu_ms_per_msg, from /proc; the
services' figures count every postgres and redis-server process on the machine).

Several --url values (comma-separated, e.g. two broker workers) spread peers round-robin across them.
Exit status: 0 when every planned message was delivered exactly once (idle: every connection accepted),
1 when anything was lost, rejected, duplicated or the run timed out, 2 on bad usage.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=("burst", "steady", "idle", "connect"))
    parser.add_argument("--roster", required=True, help="roster JSON file (from manage.py bench_roster)")
    parser.add_argument("--url", default=None,
                        help="broker WebSocket URL(s), comma-separated (default: the roster's brokerUrl)")
    parser.add_argument("--msgs", type=int, default=100, help="burst: messages per peer (default 100)")
    parser.add_argument("--rate", type=float, default=1.0, help="steady: messages per second per sender (default 1)")
    parser.add_argument("--duration", type=float, default=10.0, help="steady: seconds of sending (default 10)")
    parser.add_argument("--peers", type=int, default=None, help="steady: number of senders (default: whole roster)")
    parser.add_argument("--connections", type=int, default=None, help="idle: connections to open (default: roster size)")
    parser.add_argument("--hold", type=float, default=2.0, help="idle: seconds to wait before measuring RSS (default 2)")
    parser.add_argument("--pids", default=None, help="server process id(s) to sample from /proc, comma-separated")
    parser.add_argument("--procs", type=int, default=1,
                        help="harness processes to spread the peers over (default 1; the ledger stays in the parent)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds from the first send until the run is declared timed out (default 120)")
    parser.add_argument("--grace", type=float, default=0.5,
                        help="seconds to keep listening for duplicates after the last delivery (default 0.5)")
    parser.add_argument("--connect-concurrency", type=int, default=None,
                        help="simultaneous handshakes (default 20; connect: 200)")
    parser.add_argument("--paced", action="store_true", help="burst/steady: pace like the reference (see above)")
    parser.add_argument("--hello-timeout", type=float, default=10.0, help="seconds to wait for each hello_ack")
    parser.add_argument("--size", type=int, default=64, help="plaintext bytes per message (default 64)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the random choice of recipients")
    parser.add_argument("--no-delivery-ack", action="store_true",
                        help="do not announce deliveryAck (measure the broker's v0.1 at-most-once path)")
    parser.add_argument("--no-client-message-id", action="store_true", help="send without clientMessageId")
    parser.add_argument("--profile", metavar="DIR", default=None,
                        help="burst/steady: py-spy the --pids during the measured phase into DIR (needs py-spy)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    roster = load_roster(args.roster)
    url_text = args.url or roster.broker_url
    if not url_text:
        parser.error("--url is required (the roster has no brokerUrl)")
    urls = [u.strip() for u in url_text.split(",") if u.strip()]
    opts = RunOptions(urls=urls, pids=parse_pids(args.pids), procs=args.procs, timeout=args.timeout,
                      grace=args.grace,
                      connect_concurrency=args.connect_concurrency or (200 if args.scenario == "connect" else 20),
                      hello_timeout=args.hello_timeout, want_delivery_ack=not args.no_delivery_ack,
                      client_message_id=not args.no_client_message_id, size=args.size, seed=args.seed,
                      progress=not args.quiet, profile_dir=args.profile, paced=args.paced)
    size = len(roster.members)
    smallest_mesh = min(sum(1 for m in roster.members if m.mesh_id == mesh) for mesh in roster.mesh_ids)
    if args.scenario in ("burst", "steady") and smallest_mesh < 2:
        parser.error(f"{args.scenario} needs at least 2 peers in every roster mesh")
    if args.scenario == "burst":
        report = asyncio.run(run_traffic("burst", roster, opts, senders=list(range(size)), msgs_per_sender=args.msgs))
    elif args.scenario == "steady":
        senders = args.peers or size
        if not 0 < senders <= size or size < 2 or args.rate <= 0 or args.duration <= 0:
            parser.error("steady needs 0 < --peers <= roster size (>= 2), --rate > 0 and --duration > 0")
        report = asyncio.run(run_traffic("steady", roster, opts, senders=list(range(senders)),
                                         msgs_per_sender=max(1, round(args.rate * args.duration)),
                                         interval=1.0 / args.rate))
    else:
        report = asyncio.run(run_idle(roster, opts, connections=args.connections or size, hold=args.hold,
                                      scenario=args.scenario))
    print(json.dumps(report, sort_keys=True) if args.json else format_table(report))
    return 0 if report.get("ok") else 1
