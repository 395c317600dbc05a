"""An HTTP/1.1 server that a slow or hostile client cannot exhaust: the REST front end's transport.

`http.server.ThreadingHTTPServer` starts a thread per connection and waits on a socket forever, so
clients that connect and then send nothing (or announce a large body and trickle it) hold threads
without bound. `BoundedHTTPServer` instead:

* serves connections on a fixed pool of `workers` threads; a connection arriving while every worker
  is busy is answered at once with **503** (``Retry-After: 1``, a JSON ``{"error": ...}``) and closed,
  by one small rejecting thread, never queued (a queue would only move the exhaustion elsewhere);
* gives a request `header_timeout` seconds, in total, from the first byte it may send (or from the
  end of the previous response on a kept-alive connection) to the end of its headers, and
  `body_timeout` seconds in total to send its body: these are deadlines, not per-read timeouts, so
  a client trickling a byte at a time is dropped too. A request cut off part way is answered
  **408** and closed; an idle kept-alive connection is just closed (it holds its worker while idle,
  so at most `header_timeout` seconds: clients that keep connections open count against `workers`);
* allows each write of the response `write_timeout` seconds, so a client that stops reading frees
  its worker too;
* refuses a body before reading it (`body_problem`): a Content-Length over `max_body_bytes` is
  **413**, a missing or garbled one with a body 400/**411** (chunked request bodies are not
  accepted: a body the server did not read would be taken for the next request), and
  ``Expect: 100-continue`` is answered with the refusal instead of "100 Continue".

`BoundedRequestHandler.send_body` sends a response given as an iterable of byte chunks: a small
response with Content-Length, a large one streamed (chunked transfer encoding to HTTP/1.1 clients,
ended by closing the connection for HTTP/1.0), so a large response is never held whole in memory.
"""
import io
import itertools
import json
import logging
import queue
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

log = logging.getLogger("keraszoo.serving")

DEFAULT_WORKERS = 16
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 60.0
DEFAULT_WRITE_TIMEOUT = 60.0
#: responses up to this size are sent with Content-Length; larger ones are streamed.
STREAM_THRESHOLD = 1 << 20


class HTTPRefusal(Exception):
    """A request refused at the HTTP level (status and message for the JSON error body)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class _DeadlineReader(io.RawIOBase):
    """Socket reads that fail with TimeoutError once the handler's current deadline has passed."""

    def __init__(self, handler):
        self._handler = handler
        self._sock = handler.connection

    def readable(self):
        return True

    def readinto(self, buffer):
        remaining = self._handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self._sock.settimeout(remaining)
        count = self._sock.recv_into(buffer)
        self._handler.bytes_received += count
        return count


class _TimedWriter(io.RawIOBase):
    """Socket writes of at most `write_timeout` seconds each (sendall's timeout covers the whole call)."""

    def __init__(self, sock, timeout):
        self._sock = sock
        self._timeout = timeout

    def writable(self):
        return True

    def write(self, data):
        self._sock.settimeout(self._timeout)
        self._sock.sendall(data)
        return len(data)


def error_body(message):
    return json.dumps({"error": message}).encode()


class BoundedRequestHandler(BaseHTTPRequestHandler):
    """BaseHTTPRequestHandler with the deadlines, body checks and streaming described in the module."""

    protocol_version = "HTTP/1.1"
    deadline = 0.0
    bytes_received = 0

    # BaseHTTPRequestHandler answers "HTTP/0.9" (its default until a request line is parsed, and what a
    # request line may say) with no status line and no headers, so a malformed request line (HTTP/0.9
    # is assumed when parsing fails) or a HEAD got an answer no client can read, or nothing at all.
    # Every answer here carries a status line: HTTP/0.9 is answered as HTTP/1.0 (connection closed after).
    @property
    def request_version(self):
        return self._request_version

    @request_version.setter
    def request_version(self, value):
        self._request_version = "HTTP/1.0" if value == "HTTP/0.9" else value

    default_request_version = "HTTP/1.0"

    def setup(self):
        self.connection = self.request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = io.BufferedReader(_DeadlineReader(self), 64 * 1024)
        self.wfile = _TimedWriter(self.connection, self.server.write_timeout)

    def handle_one_request(self):
        self.deadline = time.monotonic() + self.server.header_timeout
        self.bytes_received = 0
        self._responded = False
        self._timed_out = False
        self._body_read = False
        self.requestline, self.request_version, self.command = "", "HTTP/1.1", ""  # until parse_request sets them
        try:
            super().handle_one_request()
        except (ConnectionError, OSError) as err:  # the client went away (or a write timed out)
            log.debug("rest connection %s: %s", self.client_address, err)
            self.close_connection = True
            return
        if self._timed_out and self.bytes_received and not self._responded:
            # cut off part way through a request: say so (an idle kept-alive connection is just closed)
            try:
                self.send_json(HTTPStatus.REQUEST_TIMEOUT, error_body("request not received in time; connection closed"))
            except OSError:
                pass
        if self._timed_out:
            self.close_connection = True

    def log_error(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if format.startswith("Request timed out"):
            self._timed_out = True
        log.debug("rest %s - %s", self.address_string(), format % args)

    def log_message(self, format, *args):  # noqa: A002
        log.debug("rest %s - %s", self.address_string(), format % args)

    def send_response(self, code, message=None):
        self._responded = True
        super().send_response(code, message)

    # request bodies ---------------------------------------------------------------------------
    def body_problem(self):
        """None if the announced body may be read, else an HTTPRefusal (nothing of the body is read)."""
        if self.headers.get("Transfer-Encoding"):
            return HTTPRefusal(HTTPStatus.LENGTH_REQUIRED, "chunked request bodies are not accepted: send Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return HTTPRefusal(HTTPStatus.BAD_REQUEST, "Content-Length must be a non-negative integer")
        if length > self.server.max_body_bytes:
            return HTTPRefusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"request body of {length} bytes is over this server's limit of {self.server.max_body_bytes}",
            )
        return None

    def handle_expect_100(self):
        problem = self.body_problem()
        if problem is not None:
            self.close_connection = True
            self.send_json(problem.status, error_body(problem.message))
            return False
        return super().handle_expect_100()

    def read_body(self):
        """The request body, within `body_timeout`; HTTPRefusal (connection to be closed) if refused or short."""
        problem = self.body_problem()
        if problem is not None:
            self.close_connection = True  # the body is not read, so the connection cannot be reused
            raise problem
        length = int(self.headers.get("Content-Length") or 0)
        self.deadline = time.monotonic() + self.server.body_timeout
        body = self.rfile.read(length)
        self._body_read = True
        if len(body) != length:
            self.close_connection = True
            raise HTTPRefusal(HTTPStatus.BAD_REQUEST, f"request body ended after {len(body)} of its {length} bytes")
        return body

    # responses --------------------------------------------------------------------------------
    def _close_if_body_unread(self):
        """A request answered before its announced body was read (a 404, a bad version) leaves that body in
        the stream, where it would be read as the next request: such a connection is closed after the answer."""
        headers = getattr(self, "headers", None)
        if headers is None or self._body_read:
            return
        if headers.get("Transfer-Encoding") or (headers.get("Content-Length") or "0").strip() not in ("", "0"):
            self.close_connection = True

    def send_json(self, status, payload, extra_headers=(), finishing=None):
        """Send a whole JSON body; `finishing()` (if given) runs just before its bytes go out."""
        self._close_if_body_unread()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in extra_headers:
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if finishing is not None:
            finishing()
        self.wfile.write(payload)

    def send_body(self, status, chunks, content_type="application/json", finishing=None):
        """Send an iterable of byte chunks: whole if small, else streamed without holding it.

        `finishing()` (if given) runs before the body's last bytes go out, so whatever it records
        (request metrics) is visible to a client as soon as it has read its whole answer.
        """
        self._close_if_body_unread()
        chunks = iter(chunks)
        head, size = [], 0
        for chunk in chunks:  # errors in the first MB still become an error response
            head.append(chunk)
            size += len(chunk)
            if size >= STREAM_THRESHOLD:
                break
        else:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(size))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if finishing is not None:
                finishing()
            self.wfile.write(b"".join(head))
            return
        chunked = self.request_version == "HTTP/1.1"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        try:
            for piece in itertools.chain(head, chunks):
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if finishing is not None:
                finishing()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except Exception:
            # headers are out: the only way left to signal a failure is a truncated body
            self.close_connection = True
            raise


class BoundedHTTPServer(HTTPServer):
    """HTTPServer on a fixed pool of worker threads, with deadlines and a body limit (see the module)."""

    daemon_threads = True

    def __init__(
        self,
        address,
        handler,
        workers=DEFAULT_WORKERS,
        header_timeout=DEFAULT_HEADER_TIMEOUT,
        body_timeout=DEFAULT_BODY_TIMEOUT,
        write_timeout=DEFAULT_WRITE_TIMEOUT,
        max_body_bytes=64 * 1024 * 1024,
    ):
        if workers < 1:
            raise ValueError(f"the REST server needs at least one worker, got {workers}")
        for name, value in (("header", header_timeout), ("body", body_timeout), ("write", write_timeout)):
            if not value > 0:
                raise ValueError(f"the REST {name} timeout must be positive, got {value}")
        self.workers = workers
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.write_timeout = write_timeout
        self.max_body_bytes = max_body_bytes
        self.rejected = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._active = set()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keraszoo-rest")
        self._rejects = queue.Queue(maxsize=64)
        super().__init__(address, handler)
        threading.Thread(target=self._reject_forever, name="keraszoo-rest-503", daemon=True).start()

    def server_bind(self):
        # HTTPServer.server_bind looks up the host's FQDN (a DNS query); only the port is needed here
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def busy_workers(self):
        return self._busy

    def process_request(self, request, client_address):
        with self._lock:
            full = self._busy >= self.workers
            if not full:
                self._busy += 1
                self._active.add(request)
        if full:
            self.rejected += 1
            try:
                self._rejects.put_nowait(request)
            except queue.Full:  # a flood: no answer, just the closed connection
                self.shutdown_request(request)
            return
        try:
            self._pool.submit(self._work, request, client_address)
        except RuntimeError:  # the pool is shut down: the server is stopping
            self._release(request)
            self.shutdown_request(request)

    def _release(self, request):
        with self._lock:
            self._busy -= 1
            self._active.discard(request)

    def _work(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            log.exception("REST connection from %s failed", client_address)
        finally:
            self._release(request)
            self.shutdown_request(request)

    def _reject_forever(self):
        message = error_body(f"server busy: all {self.workers} REST workers are in use; retry later")
        response = (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(message), message)
        )
        while True:
            request = self._rejects.get()
            if request is None:
                return
            try:
                request.settimeout(1.0)
                request.sendall(response)
                request.shutdown(socket.SHUT_WR)
                # read what the client sends (up to 64 KB, 1 s) so closing does not reset the answer away
                deadline, received = time.monotonic() + 1.0, 0
                while received < 65536 and time.monotonic() < deadline:
                    request.settimeout(max(0.01, deadline - time.monotonic()))
                    data = request.recv(16384)
                    if not data:
                        break
                    received += len(data)
            except OSError:
                pass
            finally:
                request.close()

    def server_close(self):
        super().server_close()
        with self._lock:
            active = list(self._active)
        for request in active:  # wake workers blocked on stalled clients
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._rejects.put(None)
