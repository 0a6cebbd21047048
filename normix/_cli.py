"""The `normix` command line."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def _families() -> list[str]:
    import normix

    return sorted(
        name
        for name, obj in vars(normix).items()
        if isinstance(obj, type) and not name.startswith("Abstract")
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    print(f"normix {__version__}")
    print("families: " + ", ".join(_families()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="normix", description=__doc__)
    parser.add_argument("--version", action="version", version=f"normix {__version__}")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="run the demo on bundled data")
    demo.set_defaults(func=_cmd_demo)
    args = parser.parse_args(argv)
    if args.command is None:
        return _cmd_demo(args)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
