"""How `python -m serving.server` ends: `shut_down`, with no TensorFlow import (the server re-exports it)."""

import os
import sys
import threading

#: the most seconds `python -m serving.server` takes to stop after SIGTERM / SIGINT (requests in flight
#: get the gRPC grace of `stop` within it); a second signal exits at once.
SHUTDOWN_SECONDS = 20.0


def shut_down(server, deadline=SHUTDOWN_SECONDS):
    """Stop `server` (requests in flight get `stop`'s grace) and end the process within `deadline` seconds.

    The process exits through `os._exit`: Python's own exit would wait for every non-daemon thread and
    finalise TensorFlow's graphs, which took longer than 30 s on a loaded machine (a test saw a server
    outlive its SIGTERM by that much); TF Serving itself exits promptly on SIGTERM.
    """
    stopper = threading.Thread(target=server.stop, name="keraszoo-shutdown", daemon=True)
    stopper.start()
    stopper.join(deadline)
    code = 0
    if stopper.is_alive():
        print(f"serving.server: shutdown took longer than {deadline:g} s; exiting anyway", file=sys.stderr, flush=True)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
