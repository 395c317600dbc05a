"""The `keraszoo` command.

    keraszoo models                                  # registered models and their parameters
    keraszoo datasets                                # datasets load_dataset knows
    keraszoo impute --model gain --input in.csv --output out.csv [--set iterations=2000] [--save DIR]
    keraszoo impute --load DIR --input new.csv --output out.csv   # reuse a saved imputer, no training
    keraszoo export --load DIR [--base-path saved_models/serving] [--name NAME] [--version V]   # SavedModel for TF Serving
    keraszoo serve --model-base-path saved_models/serving    # python -m serving.server
    keraszoo benchmark --models mean,gain --datasets spam --seeds 2
    keraszoo demo
    keraszoo train --model gain --dataset breast --epochs 20 --logdir runs/gain_breast   # python -m training.train
    keraszoo --version

TensorFlow's start-up lines and log messages below errors are hidden (`keraszoo.console.quiet_tensorflow`);
every command takes `--verbose` to show them, and full tracebacks. Otherwise an error is one line on
stderr naming the problem, with a non-zero exit status. `impute` shows Keras's progress bar on stderr
while a deep model trains when stderr is a terminal (`--progress` / `--no-progress` to choose); stdout
carries no progress. `models` keeps its listing in $KERASZOO_CACHE_DIR (default ~/.cache/keraszoo), keyed
by the sizes and modification times of the package's sources, so only the first run imports TensorFlow.
"""
import argparse
import ast
import contextlib
import hashlib
import json
import os
import sys

import keraszoo
from keraszoo.console import ArgumentParser, one_line_errors, quiet_tensorflow

#: commands that are other modules' `main(argv)`, every argument passed through.
PASS_THROUGH = {"benchmark": "training.benchmark", "demo": "training.demo", "train": "training.train", "serve": "serving.server"}


def _parse_sets(items):
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


# --------------------------------------------------------------------------------------------------
# keraszoo models: the listing is cached, keyed by the package's source files
# --------------------------------------------------------------------------------------------------
def _training_parameters(cls, deep):
    """A deep model's training parameters: its own `fit_parameters()` ({name: default})."""
    own = getattr(cls, "fit_parameters", None)
    return dict(own()) if deep and callable(own) else {}


def _model_line(name, cls, params, deep):
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    training = _training_parameters(cls, deep)
    if training:
        shown += "; training: " + ", ".join(f"{k}={v!r}" for k, v in training.items())
    kind = "deep" if deep else "classical"
    task = getattr(cls, "task", "impute")
    kinds = "/".join(getattr(cls, "example_kinds", ("table",)))
    return f"{name:14s} [{kind}, {task}, {kinds}] {shown}"


def _model_lines():
    from keraszoo.registry import get_model_class, is_deep, list_models, model_parameters

    return [_model_line(name, get_model_class(name), model_parameters(name), is_deep(name)) for name in list_models()]


def _source_fingerprint(root):
    """Changes whenever a .py file under `root` is added, removed or modified (by size or mtime)."""
    digest = hashlib.sha256(f"{keraszoo.__version__} {sys.version}".encode())
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                stat = os.stat(path)
                digest.update(f"{os.path.relpath(path, root)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _cache_path():
    base = os.environ.get("KERASZOO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "keraszoo"
    )
    return os.path.join(base, "models.json")


def _models(args):
    # Listing imports every model, hence TensorFlow (seconds); the result depends only on the
    # package's sources, so it is kept, keyed by their sizes and modification times.
    key, path = _source_fingerprint(os.path.dirname(os.path.abspath(keraszoo.__file__))), _cache_path()
    lines = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        with open(path) as f:
            cached = json.load(f)
        if cached["key"] == key:
            lines = list(cached["lines"])
    if lines is None:
        quiet_tensorflow(verbose=args.verbose)
        lines = _model_lines()
        with contextlib.suppress(OSError):  # a read-only home only costs the next run its speed
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(f"{path}.{os.getpid()}", "w") as f:
                json.dump({"key": key, "lines": lines}, f)
            os.replace(f"{path}.{os.getpid()}", path)
    print("\n".join(lines))


def _datasets(args):
    from keraszoo.data import dataset_info, list_datasets

    for name in list_datasets():
        info = dataset_info(name)
        print(f"{name:13s} {info.get('description', '')}")


# --------------------------------------------------------------------------------------------------
# keraszoo impute
# --------------------------------------------------------------------------------------------------
def _show_progress(flag, verbose, stream):
    """--progress / --no-progress if given; else with --verbose, or when `stream` is a terminal."""
    if flag is not None:
        return flag
    return bool(verbose) or bool(getattr(stream, "isatty", lambda: False)())


def _impute(args):
    # Every check that needs no model runs first: a typo fails in a fraction of a second.
    params = _parse_sets(args.set)
    if not os.path.isfile(args.input):
        raise ValueError(f"no input file {args.input}")
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise ValueError(f"the folder of --output {args.output} does not exist: {os.path.dirname(args.output)}")
    if args.load and (args.model or args.set):
        raise ValueError("--load uses the saved imputer as it is: do not combine it with --model or --set")
    if args.load and not os.path.isdir(args.load):
        raise ValueError(f"no saved imputer folder {args.load}")

    import pandas as pd

    frame = pd.read_csv(args.input)
    quiet_tensorflow(verbose=args.verbose)
    import keraszoo.sklearn
    from keraszoo.registry import get_model_class, is_deep

    if args.load:
        imputer = keraszoo.sklearn.ZooImputer.load(args.load)
        completed = imputer.transform(frame)
    else:
        name = args.model or "gain"
        if is_deep(name) and "verbose" not in params and "verbose" in _training_parameters(get_model_class(name), True):
            params["verbose"] = 1 if _show_progress(args.progress, args.verbose, sys.stderr) else 0
        imputer = keraszoo.sklearn.ZooImputer(name, **params)
        with contextlib.redirect_stdout(sys.stderr):  # Keras writes its progress bar to stdout
            imputer.fit(frame)
        completed = imputer.transform(frame)
        if args.save:
            imputer.save(args.save)
            print(f"saved the fitted imputer to {args.save}", file=sys.stderr)
    completed.to_csv(args.output, index=False)
    print(f"imputed {int(frame.isna().to_numpy().sum())} missing values; wrote {args.output}", file=sys.stderr)


def _export(args):
    if not os.path.isdir(args.load):
        raise ValueError(f"no saved imputer folder {args.load}")
    quiet_tensorflow(verbose=args.verbose)
    from keraszoo.sklearn import ZooImputer
    from serving.export import export

    try:
        imputer = ZooImputer.load(args.load)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load a saved imputer from {args.load!r}: {err}") from None
    name = args.name or os.path.basename(os.path.normpath(args.load))
    try:
        path = export(imputer, args.base_path, name, version=args.version)
    except (NotImplementedError, FileExistsError) as err:
        raise ValueError(str(err)) from None
    print(f"exported {args.load} as {path}; serve it with: python -m serving.server --model-base-path {args.base_path}")


# --------------------------------------------------------------------------------------------------
# commands that are other modules' mains
# --------------------------------------------------------------------------------------------------
def _knows_option(module, option):
    build = getattr(module, "build_parser", None)
    if build is None:
        return True  # cannot tell: pass everything through
    return any(option in action.option_strings for action in build()._actions)


def _call_main(module, argv, prog):
    """`module.main(argv)` with `prog` as its usage name: `main(argv, prog=...)` where main takes it,
    else (a bridge for mains that build their parser with a fixed prog) `build_parser`'s result renamed."""
    import inspect

    if "prog" in inspect.signature(module.main).parameters:
        return module.main(argv, prog=prog)
    build = getattr(module, "build_parser", None)
    if build is None:
        return module.main(argv)

    def build_parser(*args, **kwargs):
        parser = build(*args, **kwargs)
        parser.prog = prog
        return parser

    module.build_parser = build_parser
    try:
        return module.main(argv)
    finally:
        module.build_parser = build


def _pass_through(command, argv):
    import importlib

    verbose = "--verbose" in argv
    wants_help = bool({"-h", "--help"} & set(argv))
    if command == "serve" or not wants_help:  # serving.server imports TensorFlow with its protos
        quiet_tensorflow(verbose=verbose)
    module = importlib.import_module(PASS_THROUGH[command])
    if verbose and not _knows_option(module, "--verbose"):
        argv = [a for a in argv if a != "--verbose"]  # the quiet mode above was all it meant
    with one_line_errors(f"keraszoo {command}", verbose=verbose):
        result = _call_main(module, argv, f"keraszoo {command}")
    # An exit status only: the console script passes it to sys.exit, which would print a report
    # (a dict, a DataFrame) and exit with status 1.
    return result if isinstance(result, int) and not isinstance(result, bool) else None


def build_parser():
    parser = ArgumentParser(prog="keraszoo", description="Missing-data imputation models for TensorFlow/Keras.")
    parser.add_argument("--version", action="version", version=f"keraszoo {keraszoo.__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", help="show TensorFlow's logs and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("models", parents=[common], help="list registered models and their parameters").set_defaults(func=_models)
    sub.add_parser("datasets", parents=[common], help="list datasets").set_defaults(func=_datasets)
    impute = sub.add_parser("impute", parents=[common], help="impute a CSV file (empty cells / NaN are missing)")
    impute.add_argument("--model", help="registered model name (default gain)")
    impute.add_argument("--input", required=True)
    impute.add_argument("--output", required=True)
    impute.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model or training parameter")
    impute.add_argument("--save", help="directory to save the fitted imputer to")
    impute.add_argument("--load", help="directory of a saved imputer to use instead of fitting")
    impute.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr while a deep model trains (default: when stderr is a terminal, or with --verbose)",
    )
    impute.set_defaults(func=_impute)
    exporter = sub.add_parser("export", parents=[common], help="write a saved imputer as a SavedModel for TF Serving")
    exporter.add_argument("--load", required=True, help="directory of an imputer saved by `impute --save` or ZooImputer.save")
    exporter.add_argument("--base-path", default=os.path.join("saved_models", "serving"), help="TF Serving base path")
    exporter.add_argument("--name", help="model name (default: the saved imputer's directory name)")
    exporter.add_argument("--version", type=int, help="version number (default: the next free one)")
    exporter.set_defaults(func=_export)
    sub.add_parser("serve", help="serve exported models over gRPC and REST (python -m serving.server)", add_help=False)
    sub.add_parser("benchmark", help="benchmark models on data sets (python -m training.benchmark)", add_help=False)
    sub.add_parser("demo", help="train, save, export and serve GAIN on breast cancer (python -m training.demo)", add_help=False)
    sub.add_parser("train", help="train a deep model with model.fit (python -m training.train)", add_help=False)
    return parser


def main(argv=None):
    """The `keraszoo` command; returns an exit status (None = 0). Errors leave as SystemExit with one
    line naming the problem."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in PASS_THROUGH:  # pass every other argument through
        return _pass_through(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    with one_line_errors(f"keraszoo {args.command}", verbose=args.verbose):
        return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
