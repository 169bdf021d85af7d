"""RDF plumbing: terms, deltas, parsing and digests."""
