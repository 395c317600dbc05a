"""The `keraszoo` command.

    keraszoo models                                  # registered models and their parameters
    keraszoo datasets                                # datasets load_dataset knows
    keraszoo impute --model gain --input in.csv --output out.csv [--set iterations=2000] [--save DIR]
    keraszoo impute --load DIR --input new.csv --output out.csv   # reuse a saved imputer, no training
    keraszoo benchmark --models mean,gain --datasets spam --seeds 2
    keraszoo demo
    keraszoo train --model gain --dataset breast --epochs 20 --logdir runs/gain_breast   # python -m training.train
"""
import argparse
import ast
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
    sub.add_parser("benchmark", help="python -m training.benchmark", add_help=False)
    sub.add_parser("demo", help="python -m training.demo", add_help=False)
    sub.add_parser("train", help="python -m training.train", add_help=False)

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("benchmark", "demo", "train"):  # pass every other argument through
        import importlib

        return importlib.import_module(f"training.{argv[0]}").main(argv[1:])
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:  # bad input: one clear line, not a traceback
        raise SystemExit(f"keraszoo {args.command}: {err}") from None


if __name__ == "__main__":
    main()
