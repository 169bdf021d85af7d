"""``kgc serve``: the HTTP sidecar (Starlette under uvicorn; the ``server`` extra).

One module per concern: ``app`` (routes, lifespan), ``auth`` (keys and roles), ``backpressure``
(the queue in front of the writer), ``transactions``, ``receipts`` and ``receipts_routes``,
``sparql`` (the SPARQL 1.1 Protocol), ``patch`` (RDF Patch), ``admin`` (hooks, policy packs,
lockchain), ``health`` (health, readiness, metrics), ``settings``, ``serve`` (uvicorn).
The OpenAPI document is ``openapi.json`` beside them. See ``docs/server.md``.
"""

from kgc.server.app import create_app
from kgc.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
