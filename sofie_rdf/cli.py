"""The ``sofie-rdf`` command line: generate headers and inspect models without writing Python.

Each subcommand is one ``_add_<name>`` function that declares its arguments
and one ``_cmd_<name>`` function that does the work, so a new subcommand
is two functions and one line in :data:`_SUBCOMMANDS`.
Errors sofie-rdf raises on purpose (:class:`~sofie_rdf.SofieError`) and file
system errors are user errors: they print as one clean line with exit code 1,
never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

from ._version import __version__
from .errors import SofieError, UnsupportedOperatorError

MODEL_HELP = "model: .onnx, .keras or .h5 file, or FILE.root:KEY for a model stored with `save`"
DIM_HELP = "fix a symbolic input dim when loading (repeatable): the code is specialised for it like a constant"


def _add_dim(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dim", action="append", default=[], metavar="NAME=N", help=DIM_HELP)


def _dim_values(items: Sequence[str], option: str) -> dict[str, int]:
    """``NAME=N`` items as a dict, or a SofieError naming the one that is not."""
    dims = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep or not value.isdigit():
            raise SofieError(f"{option} takes NAME=N, got {item!r}")
        dims[key] = int(value)
    return dims


def _load(args: argparse.Namespace):  # -> sofie_rdf.Model (imported lazily, as the api is)
    """The model of ``args.model`` with its ``--dim`` values fixed."""
    from .api import load

    return load(args.model, dims=_dim_values(args.dim, "--dim"))


def _add_emit(sub: argparse._SubParsersAction) -> None:
    """``emit``: write the standalone header and its weights."""
    p = sub.add_parser("emit", help="generate the C++ header (and weights file) of a model",
                       description="Generate <Name>.hxx (TMVA SOFIE style) and, unless embedded, <Name>.dat.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("-o", "--outdir", default=".", help="output folder (created if missing; default: current folder)")
    p.add_argument("--name", help="model name: the C++ namespace is TMVA_SOFIE_<name> (default: from the file name)")
    p.add_argument("--weights", choices=("dat", "root", "embed"), default="dat",
                   help="'dat': weights file read by Session(path); 'root': the same as a ROOT file (the header "
                        "then needs ROOT's TFile); 'embed': weights inside the header")
    p.add_argument("--target", choices=("native", "jit", "cuda"), default="native",
                   help="the compiler the header is for: 'native' (g++/clang -O3 -march=native) or 'jit' (Cling: "
                        "gInterpreter.Declare), which avoids kernels only an optimizing native compiler makes fast; "
                        "'cuda': <Name>.cu and <Name>.cuda.bin for NVIDIA GPUs (nvcc, the CUDA runtime and cuBLAS; "
                        "no GPU needed to generate)")
    p.add_argument("--profile", action="store_true",
                   help="time every node: Session::profile_ns() gives nanoseconds per node, summed over calls")
    p.add_argument("--weights-dtype", choices=("float32", "bf16", "fp16", "int8"), default="float32",
                   help="how the weights of the float products (Gemm, MatMul) are stored, computed in float: 'bf16', "
                        "'fp16', or 'int8' with one scale per output column (CPU targets; default float32)")
    _add_dim(p)
    p.set_defaults(func=_cmd_emit)


def _cmd_emit(args: argparse.Namespace) -> int:
    """Load (which checks every operator is supported), generate, print the paths written."""
    files = _load(args).generate(args.outdir, name=args.name, weights=args.weights, target=args.target,
                                      profile=args.profile, weights_dtype=args.weights_dtype)
    print(f"{'source' if args.target == 'cuda' else 'header'}:  {files.header}")
    print(f"weights: {files.weights if files.weights is not None else '(embedded in the header)'}")
    return 0


def _add_info(sub: argparse._SubParsersAction) -> None:
    """``info``: describe a model, supported or not."""
    p = sub.add_parser("info", help="show inputs, outputs, operators, parameters and unsupported operators",
                       description="Summarise a model; works on models with unsupported operators too.")
    p.add_argument("model", help=MODEL_HELP)
    _add_dim(p)
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    """Print the model summary.

    A fully supported model goes through :func:`sofie_rdf.load` so the
    summary shows inferred output shapes; a model with unsupported operators
    is parsed without the support check, because telling the user what is
    missing is the point of ``info``.
    """
    try:
        print(_load(args).summary())
    except UnsupportedOperatorError:
        if not str(args.model).lower().endswith(".onnx"):
            raise
        from .model import describe
        from .parsers.onnx import from_onnx

        print(describe(from_onnx(args.model)))
    return 0


def _add_save(sub: argparse._SubParsersAction) -> None:
    """``save``: store a model's IR in a .root file."""
    p = sub.add_parser("save", help="store a model in a .root file (several models per file)",
                       description="Convert MODEL to the sofie-rdf IR and store it under KEY of OUT.root "
                                   "(replacing a model stored under KEY, keeping the other keys); "
                                   "read it back with sofie_rdf.load('OUT.root:KEY').")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("output", metavar="OUT.root", help="ROOT file, created if missing")
    p.add_argument("--key", help="key in the file (default: the model name)")
    _add_dim(p)
    p.set_defaults(func=_cmd_save)


def _cmd_save(args: argparse.Namespace) -> int:
    from .parsers.root import list_models

    model = _load(args)
    model.save(args.output, args.key)
    print(f"saved {model.name} as {args.output}:{args.key or model.name}")
    print(f"models in {args.output}: {', '.join(list_models(args.output))}")
    return 0


def _add_run(sub: argparse._SubParsersAction) -> None:
    """``run``: the model over every event of a tree, with RDataFrame on all cores."""
    p = sub.add_parser("run", help="run a model over a TTree with RDataFrame and summarise its output",
                       description="Evaluate the model on every event of TREE in FILE (one input value per "
                                   "column, in model input order) with RDataFrame; print events, time, "
                                   "events/s and statistics of the output; optionally write it and plot it.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("file", help="ROOT file")
    p.add_argument("tree", help="name of the TTree in the file")
    p.add_argument("columns", nargs="+", metavar="column", help="input columns, in the order the model expects")
    p.add_argument("--threads", type=int, default=0, help="0: all cores (default), 1: sequential, N: N threads")
    p.add_argument("--name", default="score", help="name of the output column (default: score)")
    p.add_argument("--output", metavar="OUT.root", help="write the input columns and the output to this file")
    p.add_argument("--plot", metavar="OUT.png", help="save a histogram of the output (format from the extension)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="ROOT's progress bar (default: only when stdout is a terminal)")
    _add_dim(p)
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    """One event loop, then a short report; setup (compilation, Cling JIT) and loop are timed apart."""
    from ._runner import run_tree

    model = _load(args) if args.dim else args.model
    r = run_tree(model, args.file, args.tree, args.columns, name=args.name, threads=args.threads,
                 output=args.output, plot=args.plot, progress=args.progress)
    print(f"model:    {args.model} -> column {args.name!r}")
    print(f"events:   {r.events} from {args.file}:{args.tree} ({r.threads} thread{'s' * (r.threads > 1)})")
    print(f"time:     {r.seconds:.3f} s event loop, {r.events_per_second:,.0f} events/s "
          f"(setup before it: {r.setup_seconds:.1f} s to compile the model and the loop)")
    print(f"{args.name}:    mean {r.mean:.6g}, std {r.std:.6g}, min {r.minimum:.6g}, max {r.maximum:.6g}")
    if r.snapshot:
        print(f"output:   {r.snapshot} (tree {args.tree!r})")
    if r.plot:
        print(f"plot:     {r.plot}")
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    """``bench``: time a model, optionally node by node, against onnxruntime."""
    p = sub.add_parser("bench", help="time a model on seeded inputs, per node with --per-node, next to onnxruntime",
                       description="Compile the model, time it on seeded inputs from Python (median of calls "
                                   "interleaved with onnxruntime's on one thread, for .onnx models) and, with "
                                   "--per-node, print where the time goes: our nodes and onnxruntime's per-op "
                                   "profile of the same model.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--batch", type=int, default=1, help="value of a named leading dim (default 1)")
    p.add_argument("--dims", nargs="*", default=[], metavar="NAME=N", help="values of other named dims")
    p.add_argument("--per-node", action="store_true", help="profile node by node (a build with timers)")
    p.add_argument("--backend", choices=("native", "jit"), default="native", help="default: native")
    p.add_argument("--repeat", type=int, default=200, help="timed calls (default 200)")
    p.add_argument("--top", type=int, default=25, help="nodes listed with --per-node, most time first (default 25)")
    p.add_argument("--no-onnxruntime", dest="onnxruntime", action="store_false", help="do not compare")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    """Our call time and onnxruntime's, interleaved; with ``--per-node`` both per-node profiles."""
    from .api import load
    from .compile import compile
    from .profiling import OrtRunner, comparison_table, example_inputs, interleaved

    dims = _dim_values(args.dims, "--dims")
    model = load(args.model)
    arrays = example_inputs(model, args.batch, dims)
    sess = compile(model, backend=args.backend)
    ort = OrtRunner(args.model, arrays) if args.onnxruntime and str(args.model).lower().endswith(".onnx") else None
    calls = [lambda: sess.infer(*arrays)] + ([ort.run] if ort else [])
    times = interleaved(calls, args.repeat, warmup=max(3, args.repeat // 20))
    shapes = ", ".join("x".join(map(str, a.shape)) for a in arrays)
    print(f"model {model.name} ({args.model}), inputs {shapes}, one thread, median of {args.repeat} calls")
    print(f"sofie-rdf ({args.backend}): {times[0] * 1e6:10.1f} us")
    if ort:
        print(f"onnxruntime:       {times[1] * 1e6:10.1f} us   (sofie-rdf / onnxruntime = {times[0] / times[1]:.2f})")
    if args.per_node:
        profile = sess.profile(*arrays, repeat=args.repeat)
        print("\n" + profile.table(args.top))
        if ort:
            theirs = ort.profile(args.repeat, warmup=5)
            print("\nonnxruntime per node (its graph after its own fusions):")
            for name, op_type, seconds in sorted(theirs.nodes, key=lambda n: -n[2])[:args.top]:
                print(f"      {op_type[:18]:<18} {name[:40]:<40} {seconds * 1e6:10.1f}")
            print("\nper operator type:\n" + comparison_table(profile, theirs))
    return 0


# Subcommand registrations, in the order ``--help`` lists them.
_SUBCOMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_emit, _add_info, _add_save, _add_run,
                                                                           _add_bench)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="sofie-rdf",
                                     description="ONNX, Keras and stored models to standalone C++ inference code.")
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
