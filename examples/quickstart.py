"""The README's example: one hook, one committed and one vetoed transaction."""

from kgc import Delta, Hook, KnowledgeEngine, SparqlAsk

FEEDS = "<https://brickschema.org/schema/Brick#feeds>"


def main() -> None:
    engine = KnowledgeEngine()
    engine.hooks.register(
        Hook(
            "no-self-feed",
            SparqlAsk(f"ASK {{ GRAPH <urn:kgc:delta:additions> {{ ?x {FEEDS} ?x }} }}"),
            message="equipment cannot feed itself",
        )
    )
    ok = engine.apply(
        Delta.from_text(f"<urn:ex:ahu1> {FEEDS} <urn:ex:vav1> ."), actor="integration"
    )
    print("committed:", ok.committed, "state:", ok.state_after[:16])

    bad = engine.apply(
        Delta.from_text(f"<urn:ex:ahu1> {FEEDS} <urn:ex:ahu1> ."), actor="integration"
    )
    print("status:", bad.status, "vetoed by:", bad.vetoed_by, "reason:", bad.hooks[0].reason)
    print("graph unchanged:", bad.state_after == ok.state_after, "triples:", len(engine))


if __name__ == "__main__":
    main()
