"""The ``sofie-rdf`` command line: generate headers and inspect models without writing Python.

Each subcommand is one ``_add_<name>`` function that declares its arguments
and one ``_cmd_<name>`` function that does the work, so a new subcommand
(``run`` is planned) is two functions and one line in :data:`_SUBCOMMANDS`.
Errors sofie-rdf raises on purpose (:class:`~sofie_rdf.SofieError`) and file
system errors are user errors: they print as one clean line with exit code 1,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from . import __version__
from .errors import SofieError, UnsupportedOperatorError


def _add_emit(sub: argparse._SubParsersAction) -> None:
    """``emit``: write the standalone header and its weights."""
    p = sub.add_parser("emit", help="generate the C++ header (and weights file) of a model",
                       description="Generate <Name>.hxx (TMVA SOFIE style) and, unless embedded, <Name>.dat.")
    p.add_argument("model", help="model file (.onnx)")
    p.add_argument("-o", "--outdir", default=".", help="output folder (created if missing; default: current folder)")
    p.add_argument("--name", help="model name: the C++ namespace is TMVA_SOFIE_<name> (default: from the file name)")
    p.add_argument("--weights", choices=("dat", "embed"), default="dat",
                   help="'dat': separate weights file read by Session(path); 'embed': weights inside the header")
    p.set_defaults(func=_cmd_emit)


def _cmd_emit(args: argparse.Namespace) -> int:
    """Load (which checks every operator is supported), generate, print the paths written."""
    from .api import load

    files = load(args.model).generate(args.outdir, name=args.name, weights=args.weights)
    print(f"header:  {files.header}")
    print(f"weights: {files.weights if files.weights is not None else '(embedded in the header)'}")
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    """``info``: describe a model, supported or not."""
    p = sub.add_parser("info", help="show inputs, outputs, operators, parameters and unsupported operators",
                       description="Summarise a model; works on models with unsupported operators too.")
    p.add_argument("model", help="model file (.onnx)")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    """Print the model summary.

    A fully supported model goes through :func:`sofie_rdf.load` so the
    summary shows inferred output shapes; a model with unsupported operators
    is parsed without the support check, because telling the user what is
    missing is the point of ``info``.
    """
    from .api import load

    try:
        print(load(args.model).summary())
    except UnsupportedOperatorError:
        from .model import describe
        from .parsers.onnx import from_onnx

        print(describe(from_onnx(args.model)))
    return 0


# Subcommand registrations, in the order ``--help`` lists them.
_SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_emit, _add_info)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="sofie-rdf", description="ONNX models to standalone C++ inference code.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``sofie-rdf`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SofieError, OSError) as exc:  # OSError: e.g. an output folder that cannot be written
        message = " ".join(str(exc).split())  # one line, even for multi-line messages
        print(f"sofie-rdf {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
