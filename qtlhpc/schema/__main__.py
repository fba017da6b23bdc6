"""``python -m qtlhpc.schema --write docs/results-schema.md`` (or ``--check``): the schema docs page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qtlhpc.schema import render_markdown


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qtlhpc.schema", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="PATH", help="write the schema page to PATH")
    action.add_argument("--check", metavar="PATH",
                        help="exit with status 1 when PATH differs from the page the code generates")
    args = parser.parse_args(argv)
    page = render_markdown()
    if args.write:
        Path(args.write).write_text(page, encoding="utf-8")
        return 0
    if args.check:
        path = Path(args.check)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != page:
            state = "is missing" if current is None else "is out of date"
            print(f"{path} {state}: run `python -m qtlhpc.schema --write {path}`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
