"""The ``llm-drill`` command line: up, status, logs, down, render, and the subcommands
other packages register (``toxiproxy``, ``load``, ``report``, ``history``, ``gameday``)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError
from harness.topology import DEFAULT_STACK_FILE

# Packages that add their own subcommands through ``register(subparsers)``.
PLUGGED_COMMANDS = ("harness.toxiproxy.cli", "harness.load.cli", "harness.report.cli",
                    "harness.history.cli", "harness.gameday.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-drill", description=__doc__)
    parser.add_argument("--stack-file", type=Path, default=DEFAULT_STACK_FILE,
                        help="topology file (default: harness/defaults/stack.yaml)")
    parser.add_argument("--home", type=Path, default=None,
                        help="run directories (default: $LLM_DRILL_HOME or ./.llm-drill)")
    sub = parser.add_subparsers(dest="command", required=True)
    from harness.stack import cli as stack_cli

    stack_cli.register(sub)
    for module in PLUGGED_COMMANDS:
        try:
            plugged = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        plugged.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except HarnessError as exc:
        print(f"llm-drill: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llm-drill: interrupted; everything started was torn down", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
