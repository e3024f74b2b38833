"""grpc.health.v1 state for one server: NOT_SERVING until `set_serving(True)`."""
from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name  # for reflection


class Health:
    """Reports the overall server ("") and each named service with one status."""

    def __init__(self, server: grpc.Server, service_names: list[str]):
        self._servicer = health.HealthServicer(experimental_non_blocking=True)
        self._names = ["", *service_names]
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, server)
        self.set_serving(False)

    def set_serving(self, serving: bool) -> None:
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in self._names:
            self._servicer.set(name, status)

    def shutdown(self) -> None:
        """NOT_SERVING for good: watchers are told, later sets are ignored."""
        self._servicer.enter_graceful_shutdown()
