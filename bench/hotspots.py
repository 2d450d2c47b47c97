"""Summarise py-spy raw (collapsed-stack) files: where the server's samples go.

    python -m bench.hotspots var/bench/prof/pyspy-1234.raw [--top 25]

Prints the share of samples per thread, the top leaf functions (self time), the top project functions
(broker/, protocol/, meshes/) by inclusive time, and a few buckets that name the usual suspects.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

# Substring of a frame -> bucket. First match wins, checked from the leaf upwards.
BUCKETS = [
    ("get_new_connection", "DB connection open"),
    ("BaseDatabaseWrapper._close", "DB connection close"),
    ("BaseDatabaseWrapper._commit", "DB commit"),
    ("CursorWrapper.execute", "SQL execute (driver)"),
    ("django/db/models/sql/compiler.py", "ORM SQL compilation"),
    ("django/db/models", "ORM other"),
    ("protocol/ids.py", "id generation (SystemRandom)"),
    ("json/", "JSON encode/decode"),
    ("autobahn/", "WebSocket framing (autobahn)"),
    ("twisted/", "twisted reactor"),
    ("channels_redis/", "channel layer (Redis)"),
    ("redis/", "redis client"),
    ("selectors.py", "event loop select (idle-ish)"),
]


def short(frame: str) -> str:
    match = re.match(r"(.*) \((.*):(\d+)\)", frame)
    if not match:
        return frame
    name, path, _line = match.groups()
    path = re.sub(r".*/site-packages/", "", path)
    path = re.sub(r".*?/(broker|protocol|meshes|claudemesh)/", r"\1/", path)
    path = re.sub(r".*/lib/python3\.\d+/", "", path)
    return f"{name} ({path})"


def summarise(path: str, top: int = 20) -> str:
    threads: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    project: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    total = 0
    for line in open(path, encoding="utf-8"):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        if frames and frames[0].startswith(("thread", "process")):
            threads[frames[0]] += samples
            frames = frames[1:]
        names = [short(f) for f in frames]
        raw_frames = frames
        if names:
            leaf[names[-1]] += samples
        for name in set(names):
            if name.split(" (")[-1].startswith(("broker/", "protocol/", "meshes/")):
                project[name] += samples
        for raw_frame in reversed(raw_frames):
            bucket = next((label for needle, label in BUCKETS if needle in raw_frame), None)
            if bucket:
                buckets[bucket] += samples
                break
        else:
            buckets["other"] += samples
    out = [f"{path}: {total} samples"]

    def block(title: str, counter: Counter[str], limit: int) -> None:
        out.append(f"--- {title}")
        out.extend(f"{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(limit))

    if threads:
        block("threads", threads, 10)
    block("buckets (leaf-most match)", buckets, len(BUCKETS) + 1)
    block("project functions, inclusive", project, top)
    block("leaf functions (self)", leaf, top)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    for path in args.files:
        print(summarise(path, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
