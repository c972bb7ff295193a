"""Regenerate the README's CLI reference from the real ``--help`` of every command.

.venv/bin/python scripts/cli_reference.py          # rewrite README.md in place
.venv/bin/python scripts/cli_reference.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def reference() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width: fix it
    from nasbench.cli import _subparsers, build_parser

    parser = build_parser()
    sections = ["```text\n$ nasbench --help\n" + parser.format_help().rstrip() + "\n```"]
    for name, command in _subparsers(parser).choices.items():
        sections.append(_section(f"nasbench {name}", command, "###"))
        actions = _subparsers(command)  # nested actions, such as bench's query, top, pareto ...
        for action, sub in actions.choices.items() if actions else ():
            sections.append(_section(f"nasbench {name} {action}", sub, "####"))
    return "\n\n".join(sections)


def _section(title: str, parser, level: str) -> str:
    return f"{level} `{title}`\n\n```text\n{parser.format_help().rstrip()}\n```"


def render(readme: str) -> str:
    before, _, rest = readme.partition(START)
    _, _, after = rest.partition(END)
    return f"{before}{START}\n{reference()}\n{END}{after}"


def main() -> int:
    current = README.read_text()
    if START not in current or END not in current:
        print(f"{README}: no {START} ... {END} block", file=sys.stderr)
        return 1
    updated = render(current)
    if "--check" in sys.argv[1:]:
        if updated != current:
            print("README.md's CLI reference is out of date: run scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
