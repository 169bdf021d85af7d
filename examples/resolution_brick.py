"""Three agents with conflicting views of one VAV box in a Brick building graph.

    python examples/resolution_brick.py

The graph is Larkspur Hall, the Brick model shipped with ``kgc demo`` (kgc/demo/data/building.ttl).
Three agents propose changes to VAV-101 in one round, resolved by voting (threshold 0.6) and applied
through the governed pipeline:

- the BMS integration (confidence 0.9) reports a new CO2 sensor and still sees the humidity sensor;
- a site survey (confidence 0.8) confirms the CO2 sensor, says the humidity sensor was taken out and
  relabels the box after the room it serves;
- a naming model (confidence 0.4) also wants the humidity sensor gone, and another label.

``rdfs:label`` is treated as functional (one label per entity), so the two new labels conflict.
A second round shows that a resolved delta is still judged by hooks: it is vetoed.
"""

from __future__ import annotations

import re

from kgc import Delta, Hook, KnowledgeEngine, Proposal, Resolver, SparqlAsk
from kgc.demo.assets import BUILDING_TTL

PREFIXES = """
@prefix brick: <https://brickschema.org/schema/Brick#> .
@prefix lh: <https://example.org/buildings/larkspur-hall#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix unit: <http://qudt.org/vocab/unit/> .
"""
LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
FEEDS = "<https://brickschema.org/schema/Brick#feeds>"
CO2 = """lh:vav_101_co2 a brick:CO2_Level_Sensor ; brick:isPointOf lh:vav_101 ."""
RH = """lh:vav_101_rh a brick:Zone_Air_Humidity_Sensor ;
    rdfs:label "LH.VAV-101.RH" ; brick:hasUnit unit:PERCENT_RH ; brick:isPointOf lh:vav_101 ."""
OLD_LABEL = 'lh:vav_101 rdfs:label "LH.VAV-101" .'


def turtle(additions: str = "", removals: str = "") -> Delta:
    return Delta.from_text(
        PREFIXES + additions if additions else "",
        PREFIXES + removals if removals else "",
        format="turtle",
    )


def proposals() -> list[Proposal]:
    bms = Proposal(
        "bms-integration",
        turtle(CO2 + '\nlh:vav_101_co2 rdfs:label "LH.VAV-101.CO2" .\n' + RH),
        confidence=0.9,
    )
    survey = Proposal(
        "site-survey",
        turtle(CO2 + '\nlh:vav_101 rdfs:label "LH.VAV-101 (study)" .', RH + "\n" + OLD_LABEL),
        confidence=0.8,
    )
    model = Proposal(
        "naming-model",
        turtle('lh:vav_101 rdfs:label "LH.VAV-101 north" .', RH + "\n" + OLD_LABEL),
        confidence=0.4,
    )
    return [bms, survey, model]


NAMESPACES = {
    "https://brickschema.org/schema/Brick#": "brick:",
    "https://example.org/buildings/larkspur-hall#": "lh:",
    "http://www.w3.org/2000/01/rdf-schema#": "rdfs:",
    "http://www.w3.org/1999/02/22-rdf-syntax-ns#type": "a",
    "http://qudt.org/vocab/unit/": "unit:",
}


def short(text: str) -> str:
    """N-Quads with the example's prefixes, for reading."""

    def prefixed(match: re.Match[str]) -> str:
        iri = match.group(1)
        for namespace, prefix in NAMESPACES.items():
            if iri.startswith(namespace):
                return prefix + iri.removeprefix(namespace)
        return match.group(0)

    return re.sub(r"<([^<>]*)>", prefixed, text)


def show(resolver: Resolver, round_id: str) -> None:
    record = resolver.record(round_id)
    assert record.outcome is not None
    receipt = record.receipt
    print(f"round {record.id}: {record.status} ({record.strategy}, threshold {record.threshold})")
    if receipt is not None:
        print(f"  receipt {receipt.id}: {receipt.status}, +{receipt.additions} -{receipt.removals}")
        if receipt.vetoed_by:
            print(f"  vetoed by: {', '.join(receipt.vetoed_by)}")
    for report in record.outcome.proposals:
        accepted = len(report.accepted) + len(report.superseded)
        print(f"  {report.agent}: {report.status}, {accepted} accepted")
        for rejected in report.rejected:
            side = "+" if rejected.side > 0 else "-"
            print(f"    rejected {side} {short(rejected.line)}: {short(rejected.reason)}")
    for conflict in record.outcome.conflicts:
        print(f"  conflict ({conflict.kind}) on {short(conflict.about)}: {short(conflict.settled)}")


def main() -> None:
    with KnowledgeEngine(enable_resolution=True) as engine:
        engine.load(BUILDING_TTL)
        engine.hooks.register(
            Hook(
                "no-self-feed",
                SparqlAsk(f"ASK {{ GRAPH <urn:kgc:delta:additions> {{ ?x {FEEDS} ?x }} }}"),
                message="equipment cannot feed itself",
            )
        )
        resolver = Resolver(engine, strategy="voting", threshold=0.6, functional=[LABEL])

        agents = proposals()
        opened = resolver.open("vav-101", expected=len(agents))
        for proposal in agents:
            resolver.submit(proposal, topic="vav-101")
        show(resolver, opened.id)

        loop = Proposal("naming-model", turtle(f"lh:vav_101 {FEEDS} lh:vav_101 ."), confidence=1)
        vetoed = resolver.submit(loop, topic="vav-101", expected=1)
        print()
        show(resolver, vetoed.id)


if __name__ == "__main__":
    main()
