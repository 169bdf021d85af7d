"""A post-commit hook whose effect code runs in the sandbox and proposes a change.

    python examples/sandboxed_effect.py

The hook (examples/effects/flag-unlabelled.hook.toml) fires when temperature sensors arrive
without a label; its effect (flag-unlabelled.py, content-addressed by the hook file) runs in a
confined worker and proposes a placeholder label for each. kgc applies the proposal as its own
transaction, whose receipt points back at the hook and the receipt that caused it.
"""

from __future__ import annotations

import json
from pathlib import Path

from kgc import Delta, KnowledgeEngine, load_hook_file

HERE = Path(__file__).resolve().parent
SENSORS = """
@prefix brick: <https://brickschema.org/schema/Brick#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix ex: <urn:example:building/> .
ex:zone-temp-1 a brick:Temperature_Sensor ; rdfs:label "Zone 1 temperature" .
ex:zone-temp-2 a brick:Temperature_Sensor .
ex:zone-temp-3 a brick:Temperature_Sensor .
"""


def main() -> None:
    receipts = []
    with KnowledgeEngine() as engine:
        engine.transactions.on_receipt.append(receipts.append)
        engine.hooks.register(load_hook_file(HERE / "effects" / "flag-unlabelled.hook.toml"))

        first = engine.apply(Delta.from_text(SENSORS, format="turtle"), actor="commissioning")

        (effect,) = first.effects
        print(f"receipt {first.id}: {first.status}, {first.additions} quads added")
        print(f"  effect {effect.hook}: {effect.verdict} ({effect.trust})")  # type: ignore[attr-defined]
        print(f"  layers: {', '.join(effect.layers or {})}")  # type: ignore[attr-defined]
        print(f"  logs: {list(effect.logs)}; events: {list(effect.events)}")  # type: ignore[attr-defined]
        caused = next(r for r in receipts if r.id == effect.proposal)  # type: ignore[attr-defined]
        print(f"receipt {caused.id}: {caused.status} by {caused.actor}, {caused.additions} added")
        print(f"  provenance: {json.dumps(caused.provenance)}")
        labels = engine.query(
            "SELECT ?p ?l WHERE { ?p <http://www.w3.org/2000/01/rdf-schema#label> ?l } ORDER BY ?p"
        )
        for row in labels:
            print(f"  {row['p'].value}: {row['l'].value}")


if __name__ == "__main__":
    main()
