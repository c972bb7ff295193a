"""The ``nasbench`` command line.

Each subcommand lives in ``nasbench/commands/<name>.py`` and provides ``HELP`` (one
line), ``add_arguments(parser)`` and ``run(args) -> int``. Heavy imports (torch, ray,
mlflow) happen inside ``run`` so that ``nasbench --help`` answers at once.

Exit status: 0 on success, 2 for bad input (one line on stderr), 1 for an internal
error (the traceback only with ``--debug``), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
import warnings
from pathlib import Path

from nasbench import __version__
from nasbench.config import add_config_argument, config_as_flags
from nasbench.errors import DoubtfulInput, UserError

COMMANDS = ["demo", "search", "train", "attack", "report", "bench", "describe", "ui"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on a single stderr line, exit 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nasbench",
        description="Architecture search and adversarial robustness platform for CNNs.",
    )
    parser.add_argument("--version", action="version", version=f"nasbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"nasbench.commands.{name}")
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks of internal errors"
        )
        module.add_arguments(sub)
        if getattr(module, "CONFIG_AS_FLAGS", False) and _subparsers(sub) is None:
            add_config_argument(sub)  # (a command with actions gives each action its own)
        sub.set_defaults(run=module.run, config_as_flags=getattr(module, "CONFIG_AS_FLAGS", False))
    return parser


def _expand_config(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """For a plain-argparse command, re-spell ``--config FILE`` as the command's own flags
    (or, for a command with actions such as ``bench top``, the action's), placed ahead of
    the typed ones (which therefore override the file)."""
    command = next((token for token in argv if token in COMMANDS), None)
    if command is None:
        return argv
    commands = _subparsers(parser)
    if commands is None:  # not a parser from build_parser: no command whose flags the file could give
        return argv
    subparser = commands.choices[command]
    if not subparser.get_default("config_as_flags"):
        return argv
    at = argv.index(command) + 1
    actions = _subparsers(subparser)
    if actions is not None:  # the flags belong to the action named next
        action = next((token for token in argv[at:] if token in actions.choices), None)
        if action is None:
            return argv
        subparser = actions.choices[action]
        at = argv.index(action, at) + 1
    rest = argv[at:]
    path = None
    for i, token in enumerate(rest):
        if token == "--config" and i + 1 < len(rest):
            path = rest[i + 1]
        elif token.startswith("--config="):
            path = token.split("=", 1)[1]
    if path is None:
        return argv
    return argv[:at] + config_as_flags(Path(path), subparser) + rest


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction | None:
    return next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, DoubtfulInput):
        print(f"nasbench: warning: {message}", file=sys.stderr)
    else:
        _show_library_warning(message, category, filename, lineno, file, line)


_show_library_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    warnings.showwarning = _show_warning
    # MLflow announces each new SQLite store at INFO level ("Creating initial MLflow database
    # tables..."); nasbench makes its stores itself, so that is no news to its users.
    # MLflow's warnings and errors still show.
    logging.getLogger("mlflow.store").setLevel(logging.WARNING)
    parser = build_parser()
    argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        expanded = _expand_config(parser, argv)
    except UserError as error:
        print(f"nasbench: error: {error}", file=sys.stderr)
        return 2
    args = parser.parse_args(expanded)
    args.argv = argv  # recorded in evaluation bundles
    try:
        return int(args.run(args) or 0)
    except UserError as error:
        print(f"nasbench {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nasbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # an internal error: a bug, not bad input
        if getattr(args, "debug", False):
            traceback.print_exc()
        else:
            print(
                f"nasbench {args.command}: internal error: {type(error).__name__}: {error} "
                "(rerun with --debug for the traceback)",
                file=sys.stderr,
            )
        return 1


if __name__ == "__main__":
    sys.exit(main())
