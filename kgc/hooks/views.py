"""The views hooks read in one transaction: the store, a channel's graphs, or the delta alone.

``after`` and ``before`` views read the real store (in the proposed state, or before the delta's
data is applied). A channel with graphs gets its own copies of the delta graphs, holding only the
changes inside its graphs, so a condition that starts from ``<urn:kgc:delta:additions>`` sees only
its channel's changes. The ``delta`` view is a small in-memory store holding the added quads and
both delta graphs, built once per channel on first use: O(|delta|), whatever the graph's size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import pyoxigraph as ox

from kgc.hooks.conditions import EvalContext
from kgc.hooks.model import Channel, Hook
from kgc.store.oxigraph import OxigraphStore


class Views:
    def __init__(self, base: EvalContext, channels: Iterable[Channel]) -> None:
        """``channels``: those with graphs, each once (``Plan.channels``)."""
        self.base = base
        self._channels: dict[tuple[str, ...], EvalContext] = {}
        self._deltas: dict[tuple[str, ...], EvalContext] = {}
        for channel in channels:
            if channel.graphs and channel.graphs not in self._channels:
                self._channels[channel.graphs] = self._narrow(channel, f"{len(self._channels)}")

    def staged(self) -> list[ox.Quad]:
        """The delta graphs' copies to stage in the store before any hook is evaluated."""
        quads = self.base.staged_quads()
        for ctx in self._channels.values():
            quads.extend(ctx.staged_quads())
        return quads

    def context(self, hook: Hook) -> EvalContext:
        channel = hook.channel
        if channel.view == "delta":
            return self._delta(channel)
        return self._channels[channel.graphs] if channel.graphs else self.base

    def _narrow(self, channel: Channel, suffix: str) -> EvalContext:
        base = self.base
        return replace(
            base,
            additions=[q for q in base.additions if channel.admits(q)],
            removals=[q for q in base.removals if channel.admits(q)],
            tag=f"{base.tag}-c{suffix}" if base.tag else "",
            graphs=channel.terms,
        )

    def _delta(self, channel: Channel) -> EvalContext:
        if channel.graphs not in self._deltas:
            source = self._channels[channel.graphs] if channel.graphs else self.base
            store = OxigraphStore()
            plain = replace(source, store=store, tag="")
            store.add_all([*plain.additions, *plain.staged_quads()])
            self._deltas[channel.graphs] = plain
        return self._deltas[channel.graphs]


__all__ = ["Views"]
