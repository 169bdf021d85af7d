"""The one exception tree of kgc.

::

    KGCError
    ├── ConfigError                 a setting is missing or has a bad value
    │   └── SigningKeyError         an unreadable or non-Ed25519 signing key (names the file or var)
    ├── CanonicalJSONError          a value with no RFC 8785 form (names its path, e.g. $.hooks[2])
    ├── CanonicalizationError       RDFC-1.0 canonicalization failed (its worker process broke)
    │   └── CanonicalizationBudgetExceeded  it needed more time or memory than its budget
    ├── InputError                  bad input, refused before anything changed
    │   ├── RDFSyntaxError          text that does not parse (file, line, column)
    │   ├── TermError               a term that is not valid RDF (surrogates, bad IRI)
    │   ├── DeltaConflict           one quad both added and removed
    │   ├── ReservedGraphError      a delta that touches kgc's reserved graphs
    │   ├── QuerySyntaxError        a SPARQL query that does not parse
    │   ├── NonCanonicalLiteral     a literal the store would rewrite, in strict-literal mode
    │   └── ProposalError           a malformed resolution proposal (names the field)
    ├── HookError                   a hook or its condition cannot be loaded
    │   ├── HookDefinitionError     a hook file that is malformed (names the field)
    │   ├── ConditionHashMismatch   a condition file whose sha256 differs from its ref
    │   ├── ConditionRefError       a condition ref that cannot be resolved or read
    │   ├── ConditionValueError     a condition met a value it cannot use (names it)
    │   ├── HookTimeout             a hook overran its timeout_ms (a callable is abandoned)
    │   ├── DuplicateHook           a second hook with a name already registered
    │   └── UnknownHook             removing or reading a hook that is not registered
    ├── StoreError                  the store failed (I/O, corruption); wraps the cause
    │   └── RecoveryError           the store could not be brought to the journal's state
    ├── LockchainError              the journal or the lockchain cannot be used
    │   ├── LockchainBusy           another process is writing the same lockchain
    │   ├── JournalCorrupt          a journal record that cannot be read or does not chain
    │   ├── AnchorError             receipts could not be anchored in git (names the cause)
    │   ├── NotAnchored             a receipt or tree size asked for is not anchored yet
    │   ├── ChainBroken             verification found a fault (names the first bad seq)
    │   └── ProofInvalid            an inclusion or consistency proof that does not check
    ├── PolicyPackError             a policy pack cannot be installed, activated or changed
    │   ├── ManifestError           a malformed pack manifest (names the file and the field)
    │   ├── PackIntegrityError      a file hash, an unlisted file or a path escaping the pack
    │   ├── PackSignatureError      a wrong, missing (when required) or untrusted signature
    │   └── PackDependencyError     a dependency, compatibility or dependant check refused it
    ├── BackupError                 a backup that cannot be made, read or restored (names it)
    │   ├── BackupCorrupt           an archive whose manifest or a member does not check
    │   └── RestoreRefused          a restore or rebuild target that is not empty (no --force)
    ├── ResolutionError             the resolution layer cannot take a request
    │   ├── ResolutionDisabled      enable_resolution (ENABLE_RESOLUTION) is false
    │   ├── UnknownRound            a resolution round id that this resolver does not hold
    │   ├── RoundMismatch           a proposal's round parameters differ from the open round's
    │   └── ResolutionLimitExceeded a limit on open rounds or proposals per round (names it)
    ├── TransactionError            the pipeline failed before the commit point
    │   └── TransactionTimeout      the pre-commit budget ran out
    └── EffectError                 an effect could not run or did not finish (kind: in the receipt)
        ├── SandboxUnavailable      no confined worker can run it (names the missing layer)
        ├── EffectFailed            the effect raised, or returned what is not a proposal
        ├── EffectTimeout           it overran its wall-time limit and was killed
        └── EffectLimitExceeded     it hit its memory, CPU or output limit, or broke the protocol

Vetoes are not exceptions: ``apply`` returns a receipt with ``committed=False``.
"""

from __future__ import annotations


class KGCError(Exception):
    """Root of every error kgc raises on purpose."""


class ConfigError(KGCError):
    """A setting is missing or has a bad value."""


class SigningKeyError(ConfigError):
    """A signing key that cannot be read, or is not an Ed25519 private key.

    The message names the file or environment variable, never the key material.
    """


class CanonicalJSONError(KGCError):
    """A value that has no RFC 8785 canonical JSON form, or JSON text that I-JSON refuses.

    ``path`` locates the value inside the one given, JSONPath-style: ``$``, ``$.hooks[2].score``.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class CanonicalizationError(KGCError):
    """RDFC-1.0 canonicalization failed for a reason other than its budget."""


class CanonicalizationBudgetExceeded(CanonicalizationError):
    """RDFC-1.0 canonicalization needed more than its budget: refused, or its worker killed.

    ``limit`` names what ran out: ``"pre-check"`` (refused before starting, the work being
    certainly too large), ``"wall clock"``, ``"CPU time"`` or ``"memory"``. ``budget_s`` is the
    time budget in force; ``quads`` and ``blank_nodes`` give the size of the dataset.
    """

    def __init__(
        self, message: str, *, limit: str, budget_s: float, quads: int, blank_nodes: int
    ) -> None:
        super().__init__(message)
        self.limit = limit
        self.budget_s = budget_s
        self.quads = quads
        self.blank_nodes = blank_nodes


class InputError(KGCError):
    """Input was refused before anything changed."""


class RDFSyntaxError(InputError):
    """RDF text that does not parse.

    ``source`` is the file path or ``"<string>"``; ``line`` and ``column`` are 1-based
    and ``None`` where the parser could not tell.
    """

    def __init__(self, message: str, source: str, line: int | None, column: int | None) -> None:
        where = source
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")
        self.source = source
        self.line = line
        self.column = column
        self.reason = message


class TermError(InputError):
    """A term that is not valid RDF."""


class DeltaConflict(InputError):
    """The same quad is both added and removed by one delta."""


class ReservedGraphError(InputError):
    """A delta touches a graph name reserved for kgc (``urn:kgc:``)."""


class QuerySyntaxError(InputError):
    """A SPARQL query that does not parse."""


class NonCanonicalLiteral(InputError):
    """A literal the store would rewrite, refused because literal policy is ``refuse``."""


class ProposalError(InputError):
    """A resolution proposal that is malformed; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"proposal field {field!r}: {message}")
        self.field = field


class HookError(KGCError):
    """A hook or its condition cannot be loaded or registered."""


class HookDefinitionError(HookError):
    """A hook definition that is malformed; the message names the field."""


class ConditionHashMismatch(HookError):
    """A condition file whose sha256 does not match its reference."""


class ConditionRefError(HookError):
    """A condition reference that cannot be resolved or read."""


class ConditionValueError(HookError):
    """A condition met a value it cannot evaluate, such as a non-numeric value to sum.

    Raised during evaluation: the hook's verdict is ``error``, which in strict mode refuses the
    transaction.
    """


class HookTimeout(HookError):
    """A hook overran its ``timeout_ms``; a callable that overruns is abandoned, not killed."""


class DuplicateHook(HookError):
    """A hook with this name is already registered."""


class UnknownHook(HookError):
    """No hook with this name is registered."""


class StoreError(KGCError):
    """The store failed; the cause is chained."""


class RecoveryError(StoreError):
    """After replaying the journal, the graph does not match the last committed receipt."""


class LockchainError(KGCError):
    """The journal or the lockchain cannot be used."""


class LockchainBusy(LockchainError):
    """Another process holds the writer lock of this lockchain directory."""


class JournalCorrupt(LockchainError):
    """A journal record that cannot be read, or that does not chain to the one before."""


class AnchorError(LockchainError):
    """Receipts could not be anchored in git; the message names the cause (I/O, a broken link)."""


class NotAnchored(LockchainError):
    """A proof was asked for a receipt or tree size that the git anchor does not hold (yet)."""


class ChainBroken(LockchainError):
    """Verification of a lockchain found a fault.

    ``seq`` is the first bad sequence number, ``kind`` names the check that failed (``hash``,
    ``signature``, ``link``, ``git-object``, ...; see ``kgc.lockchain.report``).
    """

    def __init__(self, message: str, *, seq: int, kind: str) -> None:
        super().__init__(message)
        self.seq = seq
        self.kind = kind


class ProofInvalid(LockchainError):
    """An inclusion or consistency proof that does not check; the message says which step."""


class PolicyPackError(KGCError):
    """A policy pack cannot be installed, activated, deactivated or rolled back; nothing changed."""


class ManifestError(PolicyPackError):
    """A pack manifest that is malformed; the message names the file and the field path."""


class PackIntegrityError(PolicyPackError):
    """A pack whose files do not match its manifest, or whose paths or archive are unsafe."""


class PackSignatureError(PolicyPackError):
    """A pack signature that is wrong, from an untrusted key, or missing where one is required."""


class PackDependencyError(PolicyPackError):
    """A dependency or compatibility range is not met, or an active pack still depends on one."""


class BackupError(KGCError):
    """A backup that cannot be made, read or restored; the message names the archive or path."""


class BackupCorrupt(BackupError):
    """An archive that is not a kgc backup, or whose manifest or a member does not check.

    The message names the archive and, where one is at fault, the member.
    """


class RestoreRefused(BackupError):
    """A restore or rebuild target that already holds data; ``--force`` replaces it."""


class ResolutionError(KGCError):
    """The resolution layer cannot take a request; nothing changed."""


class ResolutionDisabled(ResolutionError):
    """The resolution layer is switched off (``enable_resolution``, ``ENABLE_RESOLUTION``)."""


class UnknownRound(ResolutionError):
    """No resolution round with this id is held (never opened, or dropped from memory)."""


class RoundMismatch(ResolutionError):
    """A proposal asked for round parameters (``expected``) that differ from the open round's."""


class ResolutionLimitExceeded(ResolutionError):
    """A proposal would pass ``limit`` (``resolution_max_open_rounds`` or
    ``resolution_max_proposals``); nothing was added."""

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit


class TransactionError(KGCError):
    """The pipeline failed before the commit point; nothing changed."""


class TransactionTimeout(TransactionError):
    """The pre-commit time budget ran out; nothing changed."""


class EffectError(KGCError):
    """An effect could not run or did not finish; receipts record it as a typed ``error_kind``."""

    kind = "error"


class SandboxUnavailable(EffectError):
    """No confined worker can run the effect (names the missing layer or the broken part)."""

    kind = "sandbox_unavailable"


class EffectFailed(EffectError):
    """The effect raised, or returned something that is not a proposal (names what)."""

    kind = "failed"


class EffectTimeout(EffectError):
    """The effect overran its wall-time limit and its worker was killed."""

    kind = "timeout"


class EffectLimitExceeded(EffectError):
    """The effect hit a memory, CPU or output limit, or broke the result protocol."""

    kind = "limit"
