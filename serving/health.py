"""Liveness and readiness: what load balancers and Kubernetes probes ask the server.

* REST ``GET /healthz`` — 200 ``{"status": "alive"}`` while the process answers HTTP (liveness);
* REST ``GET /readyz`` — 200 once every configured model has at least one AVAILABLE version (and at
  least one model is configured), else 503 naming the models that are not ready; 503 too once the
  server is stopping (readiness);
* gRPC's standard health service ``grpc.health.v1.Health`` (package ``grpcio-health-checking``):
  ``Check``/``Watch`` of service ``""`` is SERVING exactly when ``/readyz`` is 200, and of a model's
  name SERVING while that model has an AVAILABLE version (NOT_SERVING otherwise, and once removed
  from the config; a name never served is NOT_FOUND). A thread refreshes the statuses every
  `interval` seconds, and ``Check`` refreshes before it answers.
"""
import logging
import threading

from serving.servables import ServingError

log = logging.getLogger("keraszoo.serving")

try:
    from grpc_health.v1 import health as grpc_health
    from grpc_health.v1 import health_pb2, health_pb2_grpc
except ImportError:  # grpcio-health-checking missing: REST probes still work
    grpc_health = health_pb2 = health_pb2_grpc = None


class ModelHealth:
    """Readiness of a ModelManager's models, for REST and for grpc.health.v1."""

    def __init__(self, manager, interval=0.5):
        self.manager = manager
        self.interval = interval
        self.stopping = False
        self._stop = threading.Event()
        self._thread = None
        self._servicer = None
        self._known = set()
        self._lock = threading.Lock()

    def readiness(self):
        """(ready, {model name: has an AVAILABLE version})."""
        models = {}
        for name in self.manager.model_names():
            try:
                models[name] = any(state == "AVAILABLE" for _, state, _ in self.manager.status(name))
            except ServingError:  # removed between the two calls
                continue
        return bool(models) and all(models.values()) and not self.stopping, models

    # gRPC --------------------------------------------------------------------------------------
    def add_to_server(self, grpc_server):
        if grpc_health is None:
            log.warning("grpcio-health-checking is not installed: no grpc.health.v1 service")
            return
        health = self

        class _Servicer(grpc_health.HealthServicer):
            def Check(self, request, context):
                health.refresh()
                return super().Check(request, context)

        self._servicer = _Servicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, grpc_server)
        self.refresh()

    def refresh(self):
        if self._servicer is None:
            return
        ready, models = self.readiness()
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        with self._lock:
            for name in self._known - set(models):
                self._servicer.set(name, not_serving)
            for name, available in models.items():
                self._servicer.set(name, serving if available and not self.stopping else not_serving)
            self._servicer.set("", serving if ready else not_serving)
            self._known |= set(models)

    def start(self):
        if self._servicer is not None and self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._refresh_forever, name="keraszoo-health", daemon=True)
            self._thread.start()
        return self

    def _refresh_forever(self):
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:
                log.exception("refreshing the health status failed")

    def stop(self):
        """Mark everything NOT_SERVING (the server is going away) and stop refreshing."""
        self.stopping = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._servicer is not None:
            self.refresh()
