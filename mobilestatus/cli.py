"""Command line: ``mobilestatus check NUMBER...`` and ``mobilestatus sandbox``.

Exit codes (documented in docs/cli.md):
  0  every number was checked (whatever its status)
  1  at least one number could not be checked (invalid, or an API error)
  2  usage error
  3  configuration error (no AppCode, bad URL)
  130 interrupted
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import unicodedata
from typing import Iterator, Sequence

from . import __version__
from ._types import CheckResult, Outcome
from .client import Client
from .errors import MobileStatusError
from .numbers import mask
from .providers import kuaizheng

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_INTERRUPTED = 130


def _width(text: str) -> int:
    # CJK characters take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _row(value: object, outcome: Outcome) -> list[str]:
    if isinstance(outcome, CheckResult):
        place = " ".join(p for p in (outcome.province, outcome.city) if p)
        if outcome.province and outcome.province == outcome.city:
            place = outcome.province
        return [
            outcome.number,
            outcome.status.name,
            outcome.status.label_zh,
            outcome.carrier.label_zh,
            place,
            "",
        ]
    shown = mask(str(value)) if isinstance(value, (str, int)) else type(value).__name__
    return [shown, "ERROR", "", "", "", f"{type(outcome).__name__}: {outcome.message}"]


def format_table(values: Sequence[object], outcomes: Sequence[Outcome]) -> str:
    header = ["number", "status", "状态", "carrier", "region", "error"]
    rows = [header] + [_row(v, o) for v, o in zip(values, outcomes)]
    widths = [max(_width(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        lines.append("  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


@contextlib.contextmanager
def _client_for(args: argparse.Namespace) -> Iterator[Client]:
    if args.sandbox:
        from .sandbox import Sandbox

        with Sandbox(latency=args.sandbox_latency) as sandbox:
            with Client(sandbox.appcode, base_url=sandbox.base_url, timeout=args.timeout) as client:
                yield client
        return
    base_url = args.base_url or kuaizheng.DEFAULT_BASE_URL
    with Client(args.appcode, base_url=base_url, timeout=args.timeout) as client:
        yield client


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        with _client_for(args) as client:
            batch = client.check_many(
                args.numbers, concurrency=args.concurrency, progress=args.progress
            )
    except MobileStatusError as error:
        print(f"mobilestatus: {type(error).__name__}: {error.message}", file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as error:
        print(f"mobilestatus: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print(format_table(args.numbers, batch))
    return EXIT_SOME_FAILED if batch.errors else EXIT_OK


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox import serve

    serve(args.host, args.port, appcode=args.appcode, latency=args.latency)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobilestatus",
        description="Is this Chinese mobile number in service?",
    )
    parser.add_argument("--version", action="version", version=f"mobilestatus {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and failures")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="check numbers and print a table")
    check.add_argument("numbers", nargs="+", help="numbers, e.g. 13800138000 or '+86 138 0013 8000'")
    check.add_argument("--sandbox", action="store_true",
                       help="answer from the embedded sandbox (no account, no cost)")
    check.add_argument("--sandbox-latency", type=float, default=0.0, help=argparse.SUPPRESS)
    check.add_argument("--appcode", default=None,
                       help="AppCode (default: $MOBILESTATUS_APPCODE; prefer the variable: "
                            "command lines are visible to other users)")
    check.add_argument("--base-url", default=os.environ.get("MOBILESTATUS_BASE_URL"))
    check.add_argument("--timeout", type=float, default=10.0, help="seconds per check (default 10)")
    check.add_argument("--concurrency", type=int, default=16)
    check.add_argument("--progress", action="store_true")
    check.set_defaults(func=_cmd_check)

    sandbox = sub.add_parser("sandbox", help="run the local emulator of the upstream API")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8080)
    sandbox.add_argument("--appcode", default=None, help="AppCode to accept (default: random)")
    sandbox.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    sandbox.set_defaults(func=_cmd_sandbox)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("mobilestatus: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
