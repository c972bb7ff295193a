"""The command line a result records, so that a reader can run it again."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

__all__ = ["command_line"]


def command_line(argv: list[str] | None = None) -> str | None:
    """The command as typed: ``argv`` when given, else this process's own when it is the
    ``nasbench`` CLI; None when neither is known (a call from Python)."""
    if argv is not None:
        return shlex.join(["nasbench", *argv])
    program = Path(sys.argv[0]).name if sys.argv else ""
    if program in ("nasbench", "__main__.py", "cli.py"):
        return shlex.join(["nasbench", *sys.argv[1:]])
    return None
