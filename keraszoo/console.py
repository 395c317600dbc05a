"""What a person at a terminal sees: TensorFlow's start-up noise hidden, errors in one line.

    from keraszoo.console import quiet_tensorflow
    quiet_tensorflow(verbose=args.verbose)   # first thing in a command's main, before TensorFlow is imported

    from keraszoo.console import one_line_errors
    with one_line_errors("keraszoo impute", verbose=args.verbose):
        ...                                  # any exception -> SystemExit("keraszoo impute: <problem>")

Importing this module imports neither TensorFlow nor Keras.

Why a file-descriptor redirect: TensorFlow's C++ start-up lines (``I0000 ... oneDNN custom operations
are on``, ``cudart_stub.cc ... Could not find cuda drivers``, ``E0000 ... failed call to cuInit``,
``WARNING: All log messages before absl::InitializeLog() is called are written to STDERR``) are
written by absl before its logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` does not hide them.
`quiet_tensorflow` sends file descriptor 2 to a temporary file while it imports TensorFlow and
initialises the devices (where those lines are written), then restores it, so later errors still
show. GPUs stay usable: nothing is hidden from TensorFlow, only its messages from the terminal.
"""
import argparse
import contextlib
import os
import re
import sys

__all__ = ["quiet_tensorflow", "one_line_errors", "run_cli", "error_line", "silenced_stderr", "ArgumentParser"]

#: Python warnings attributed to these packages are hidden in quiet mode.
NOISY_PACKAGES = r"(tensorflow|keras|tf_keras|tensorflow_probability|absl|google\.protobuf)(\.|$)"

#: exceptions whose message is the whole story: shown without their type name.
_PLAIN = (ValueError, OSError)


@contextlib.contextmanager
def silenced_stderr():
    """Send file descriptor 2 (C/C++ code and Python's sys.stderr alike) to a temporary file.

    If the block raises, what was written is replayed on the real stderr before the exception
    propagates, so a failed TensorFlow import still explains itself.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded interpreter, closed fd)
        yield
        return
    import tempfile

    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                with contextlib.suppress(Exception):
                    sys.stderr.write(sink.read().decode(errors="replace"))
                    sys.stderr.flush()


def quiet_tensorflow(verbose=False):
    """Import TensorFlow without its start-up noise, and keep its logs at errors only.

    Call it first in a command's `main`, before anything imports TensorFlow or Keras (it still helps
    after, but the import's own lines have then been printed). It sets ``TF_CPP_MIN_LOG_LEVEL=2``
    (unless already set), TensorFlow's and absl's Python loggers to ERROR, hides Python warnings
    raised from TensorFlow/Keras, and imports TensorFlow and lists its devices with stderr silenced.
    Idempotent. With ``verbose=True`` it does nothing: every message shows.
    """
    if verbose:
        return
    import logging
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module=NOISY_PACKAGES)
    with silenced_stderr():
        import tensorflow as tf

        # The first device look-up loads the CUDA driver (cuInit) and prints what it finds; it does
        # not create the runtime context, so thread pools and visible devices can still be set.
        tf.config.list_physical_devices()
    tf.get_logger().setLevel(logging.ERROR)  # e.g. "... triggered tf.function retracing"
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl comes with TensorFlow
        pass


def error_line(err):
    """`err` as one line: its message (with the type name unless it is a ValueError or OSError)."""
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        text = f"{err.strerror}: {err.filename}"
    else:
        text = str(err).strip()
    if not isinstance(err, _PLAIN) or not text:
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return re.sub(r"\s*\n\s*", " ", text)


class one_line_errors(contextlib.ContextDecorator):
    """Context manager (or decorator): an exception leaves as ``SystemExit("PROG: <one line>")``.

    Python prints a SystemExit's message on stderr and exits with status 1, no traceback. Ctrl-C
    exits with status 130 and "PROG: interrupted". SystemExit passes through untouched. With
    ``verbose=True`` exceptions propagate as they are, traceback included.
    """

    def __init__(self, prog, verbose=False):
        self.prog = prog
        self.verbose = verbose

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if err is None or self.verbose or isinstance(err, SystemExit):
            return False
        if isinstance(err, KeyboardInterrupt):
            print(f"{self.prog}: interrupted", file=sys.stderr)
            raise SystemExit(130) from None
        if not isinstance(err, Exception):
            return False
        hint = "" if isinstance(err, _PLAIN) else " (--verbose shows the traceback)"
        raise SystemExit(f"{self.prog}: {error_line(err)}{hint}") from None


def run_cli(main, argv=None, prog=None):
    """Call ``main(argv)`` with one-line errors; ``--verbose`` in argv keeps tracebacks.

    For ``if __name__ == "__main__": run_cli(main)`` in a script whose main has no error handling of
    its own. `prog` names the command in messages (default: the script's name).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    prog = prog or os.path.basename(sys.argv[0] or "keraszoo")
    with one_line_errors(prog, verbose="--verbose" in argv):
        return main(argv)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one line: ``PROG: error: <problem> (see PROG --help)``.

    Sub-parsers made with `add_subparsers` are of this class too.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
