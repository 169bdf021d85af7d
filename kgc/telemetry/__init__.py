"""Metrics, traces and logs for the sidecar: see ``docs/observability.md``.

``Metrics`` renders the runbook's Prometheus series from receipts; ``kgc.telemetry.tracing``
emits OpenTelemetry spans through the API (``configure_tracing`` installs the SDK);
``configure_logging`` writes JSON lines. The library never configures any of them by itself.

Names are imported on first use: the pipeline imports ``kgc.telemetry.tracing``, and this
package must not pull the rest of ``kgc`` in while ``kgc.hooks`` is still being imported.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kgc.telemetry.logs import JsonFormatter, configure_logging
    from kgc.telemetry.metrics import Metrics
    from kgc.telemetry.tracing import configure_tracing

__all__ = ["JsonFormatter", "Metrics", "configure_logging", "configure_tracing"]
_HOMES = {
    "JsonFormatter": "kgc.telemetry.logs",
    "configure_logging": "kgc.telemetry.logs",
    "Metrics": "kgc.telemetry.metrics",
    "configure_tracing": "kgc.telemetry.tracing",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kgc.telemetry' has no attribute {name!r}")
    return getattr(import_module(home), name)
