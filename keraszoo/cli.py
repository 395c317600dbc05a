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
"""
import argparse
import ast
import os
import sys


def _parse_sets(items):
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def _models(args):
    from keraszoo.registry import is_deep, list_models, model_parameters
    from keraszoo.sklearn import FIT_PARAMETERS

    for name in list_models():
        params = model_parameters(name)
        kind = "deep" if is_deep(name) else "classical"
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
        extra = f"; training: {', '.join(FIT_PARAMETERS)}" if kind == "deep" else ""
        print(f"{name:14s} [{kind}] {shown}{extra}")


def _datasets(args):
    from keraszoo.data import dataset_info, list_datasets

    for name in list_datasets():
        info = dataset_info(name)
        print(f"{name:13s} {info.get('description', '')}")


def _impute(args):
    import pandas as pd

    from keraszoo.sklearn import ZooImputer

    frame = pd.read_csv(args.input)
    if args.load:
        if args.model or args.set:
            raise SystemExit("--load uses the saved imputer as it is: do not combine it with --model or --set")
        imputer = ZooImputer.load(args.load)
        completed = imputer.transform(frame)
    else:
        imputer = ZooImputer(args.model or "gain", **_parse_sets(args.set))
        completed = imputer.fit(frame).transform(frame)
        if args.save:
            imputer.save(args.save)
            print(f"saved the fitted imputer to {args.save}", file=sys.stderr)
    completed.to_csv(args.output, index=False)
    print(f"imputed {int(frame.isna().to_numpy().sum())} missing values; wrote {args.output}", file=sys.stderr)


def _export(args):
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="keraszoo", description="Missing-data imputation models for TensorFlow/Keras.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list registered models").set_defaults(func=_models)
    sub.add_parser("datasets", help="list datasets").set_defaults(func=_datasets)
    impute = sub.add_parser("impute", help="impute a CSV file (empty cells / NaN are missing)")
    impute.add_argument("--model", help="registered model name (default gain)")
    impute.add_argument("--input", required=True)
    impute.add_argument("--output", required=True)
    impute.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model or training parameter")
    impute.add_argument("--save", help="directory to save the fitted imputer to")
    impute.add_argument("--load", help="directory of a saved imputer to use instead of fitting")
    impute.set_defaults(func=_impute)
    exporter = sub.add_parser("export", help="write a saved imputer as a SavedModel for TF Serving")
    exporter.add_argument("--load", required=True, help="directory of an imputer saved by `impute --save` or ZooImputer.save")
    exporter.add_argument("--base-path", default=os.path.join("saved_models", "serving"), help="TF Serving base path")
    exporter.add_argument("--name", help="model name (default: the saved imputer's directory name)")
    exporter.add_argument("--version", type=int, help="version number (default: the next free one)")
    exporter.set_defaults(func=_export)
    sub.add_parser("serve", help="python -m serving.server", add_help=False)
    sub.add_parser("benchmark", help="python -m training.benchmark", add_help=False)
    sub.add_parser("demo", help="python -m training.demo", add_help=False)
    sub.add_parser("train", help="python -m training.train", add_help=False)

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("benchmark", "demo", "train"):  # pass every other argument through
        import importlib

        return importlib.import_module(f"training.{argv[0]}").main(argv[1:])
    if argv and argv[0] == "serve":
        from serving.server import main as serve

        return serve(argv[1:])
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad input: one clear line, not a traceback
        raise SystemExit(f"keraszoo {args.command}: {err}") from None


if __name__ == "__main__":
    main()
