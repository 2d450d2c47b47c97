"""The `claudemesh` console script. `claudemesh hook …` runs on every Claude Code tool call and prompt, so it
starts without loading the rest of the command line (websockets, MCP, crypto)."""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["hook"] and len(argv) <= 2:
        from peer.config import ConfigStore
        from peer.hook import run_hook

        return run_hook(argv[1] if len(argv) == 2 else "", ConfigStore())
    from peer.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
