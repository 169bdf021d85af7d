"""Effects: trusted callables in process, untrusted code in the sandbox (docs/effects.md)."""
