"""Prometheus counters; served on METRICS_PORT when set."""

from __future__ import annotations

from prometheus_client import Counter, start_http_server

EVENTS = Counter("readout_events_total", "New events seen", ["source"])
ALERTS = Counter("readout_alerts_total", "Alerts raised", ["rule", "severity"])
POLLS = Counter("readout_polls_total", "Source polls", ["source", "outcome"])
DELIVERIES = Counter("readout_deliveries_total", "Delivery attempts", ["adapter", "outcome"])


def serve(port: int) -> None:
    """Expose /metrics on 127.0.0.1 only: metrics are for the operator, not the world."""
    start_http_server(port, addr="127.0.0.1")
