"""The kernel-enforced layers a sandbox worker drops into before it reads any effect code.

Standard library only: this module runs inside the sandbox's zygote (``python -I -S``), which
never imports kgc, pyoxigraph or anything from site-packages.

Order matters, and ``confine`` applies the layers in this order:

1. resource limits: address space, CPU seconds, no file writes (``RLIMIT_FSIZE=0``), no core
   dumps, no new processes, a handful of descriptors, no locked memory;
2. a non-root user (``setresuid`` to the configured uid) when started as root, with no
   supplementary groups; then the parent-death signal and non-dumpable (no ptrace by siblings);
3. ``no_new_privs``, which Landlock and an unprivileged seccomp filter both require;
4. Landlock: every file-system right this kernel's ABI knows is handled and none is granted,
   TCP bind and connect are denied (ABI 4+), and signals and abstract Unix sockets are scoped to
   the sandbox (ABI 6+);
5. seccomp, last: an allow-list of the system calls a running interpreter needs to compute and
   to talk over its one inherited socket. Everything else fails with ``EPERM`` (``clone3`` with
   ``ENOSYS``, so libc falls back to ``clone``, which is refused too); a foreign architecture or
   the x32 ABI kills the process.

What is not confined: the memory the worker already holds (a copy of the zygote, which holds no
secret), its inherited socket, and /dev/null on descriptors 0-2.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import resource
import signal
import struct
from typing import Any

# -- prctl and friends -------------------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2

# -- Landlock (uapi/linux/landlock.h); the syscall numbers are the same on every architecture --
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
# File-system rights by the ABI that introduced them: 13 in v1, REFER in v2, TRUNCATE in v3,
# IOCTL_DEV in v5.
_FS_RIGHTS = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
_NET_BIND_CONNECT_TCP = 0b11  # ABI 4
_SCOPE_ABSTRACT_UNIX_AND_SIGNAL = 0b11  # ABI 6

# -- seccomp BPF -------------------------------------------------------------------------------
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_CLONE3_X86_64 = 435

# What a confined interpreter may still do on x86_64, by number (arch/x86/entry/syscalls).
# Chosen by what CPython 3.11+ needs to run pure-Python code, allocate, sleep, raise and exit,
# and what the worker needs to read its call and write its result on descriptor 3. Not uname:
# the host's name and kernel build are none of an effect's business.
ALLOWED_X86_64 = {
    "read": 0,
    "write": 1,
    "close": 3,
    "mmap": 9,
    "mprotect": 10,
    "munmap": 11,
    "brk": 12,
    "rt_sigaction": 13,
    "rt_sigprocmask": 14,
    "rt_sigreturn": 15,
    "readv": 19,
    "writev": 20,
    "sched_yield": 24,
    "mremap": 25,
    "madvise": 28,
    "nanosleep": 35,
    "getpid": 39,
    "exit": 60,
    "gettimeofday": 96,
    "getrusage": 98,
    "times": 100,
    "getuid": 102,
    "getgid": 104,
    "geteuid": 107,
    "getegid": 108,
    "sigaltstack": 131,
    "gettid": 186,
    "futex": 202,
    "restart_syscall": 219,
    "clock_gettime": 228,
    "clock_getres": 229,
    "clock_nanosleep": 230,
    "exit_group": 231,
    "getrandom": 318,
}

LAYERS = ("rlimits", "user", "no_new_privs", "landlock", "seccomp")


class LayerUnavailable(Exception):
    """A layer this kernel or process cannot apply; the message names it and says why."""


@functools.cache
def _sys() -> Any:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


def _prctl(option: int, arg: int | Any = 0, arg3: int | Any = 0) -> None:
    if _sys().prctl(option, arg, arg3, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"prctl({option}): {os.strerror(code)}")


# -- 1. resource limits -------------------------------------------------------------------------


def address_space_in_use() -> int:
    """Bytes of address space this process has mapped now (``/proc/self/statm``, first field)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def set_rlimits(memory_bytes: int, cpu_seconds: int, descriptors: int) -> dict[str, int]:
    """Cap the process; ``memory_bytes`` is what it may map on top of what it holds now."""
    limit_as = address_space_in_use() + memory_bytes
    limits = {
        "RLIMIT_AS": limit_as,
        "RLIMIT_CPU": cpu_seconds,
        "RLIMIT_FSIZE": 0,
        "RLIMIT_CORE": 0,
        "RLIMIT_NPROC": 0,
        "RLIMIT_NOFILE": descriptors,
        "RLIMIT_MEMLOCK": 0,
        "RLIMIT_MSGQUEUE": 0,
    }
    for name, value in limits.items():
        hard = value + 1 if name == "RLIMIT_CPU" else value  # SIGXCPU first, SIGKILL a second on
        resource.setrlimit(getattr(resource, name), (value, hard))
    return limits


# -- 2. user --------------------------------------------------------------------------------------


def drop_user(uid: int, gid: int) -> str:
    """Become ``uid``:``gid`` with no groups when root; otherwise stay the unprivileged caller."""
    if os.geteuid() != 0:
        return f"unprivileged host user {os.geteuid()}"
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise LayerUnavailable(f"user: still uid {os.getresuid()} after setresuid({uid})")
    return f"uid {uid} gid {gid}"


def detach() -> None:
    """Die with the zygote, and refuse ptrace and core dumps from anyone with our uid."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_DUMPABLE, 0)


# -- 4. Landlock --------------------------------------------------------------------------------


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is absent or disabled."""
    version = _sys().syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return int(version) if version > 0 else 0


def landlock_deny_all() -> int:
    """Restrict this process: no file access at all, no TCP, signals and abstract sockets scoped."""
    abi = landlock_abi()
    if abi < 1:
        raise LayerUnavailable("landlock: this kernel has no Landlock (or it is disabled)")
    fs = _FS_RIGHTS[max(v for v in _FS_RIGHTS if v <= abi)]
    attr = struct.pack("=Q", fs)
    if abi >= 4:
        attr += struct.pack("=Q", _NET_BIND_CONNECT_TCP)
    if abi >= 6:
        attr += struct.pack("=Q", _SCOPE_ABSTRACT_UNIX_AND_SIGNAL)
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _sys().syscall(SYS_LANDLOCK_CREATE_RULESET, buf, len(attr), 0)
    if fd < 0:
        code = ctypes.get_errno()
        raise LayerUnavailable(f"landlock: create_ruleset failed: {os.strerror(code)}")
    try:
        if _sys().syscall(SYS_LANDLOCK_RESTRICT_SELF, int(fd), 0) != 0:
            code = ctypes.get_errno()
            raise LayerUnavailable(f"landlock: restrict_self failed: {os.strerror(code)}")
    finally:
        os.close(int(fd))
    return abi


# -- 5. seccomp -------------------------------------------------------------------------------


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(allowed: dict[str, int] | None = None) -> bytes:
    """The BPF allow-list filter for x86_64, as the bytes of a ``sock_filter`` array."""
    numbers = sorted(set((allowed or ALLOWED_X86_64).values()))
    deny = _RET_ERRNO | errno.EPERM
    n = len(numbers)
    # Layout: 0 ld arch, 1 jeq x86_64, 2 kill, 3 ld nr, 4 jge x32, 5 jeq clone3,
    # 6..6+n-1 jeq allowed, then deny, allow, enosys, kill (BPF jumps only forward).
    allow_at, enosys_at, kill_at = 7 + n, 8 + n, 9 + n  # deny (6 + n) is the fall-through
    prog = [
        _insn(_LD_W_ABS, 0, 0, 4),
        _insn(_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0, 0, 0),
        _insn(_JGE_K, kill_at - 5, 0, _X32_SYSCALL_BIT),
        _insn(_JEQ_K, enosys_at - 6, 0, _CLONE3_X86_64),
    ]
    for i, nr in enumerate(numbers):
        pc = 6 + i
        prog.append(_insn(_JEQ_K, allow_at - (pc + 1), 0, nr))
    prog += [
        _insn(_RET_K, 0, 0, deny),
        _insn(_RET_K, 0, 0, _RET_ALLOW),
        _insn(_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),
    ]
    return b"".join(prog)


@functools.cache
def _default_program() -> bytes:
    return seccomp_program()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@functools.cache
def seccomp_supported() -> str | None:
    """``None`` when this process can load the filter; otherwise why not. The answer is the
    kernel's and the machine's, the same for every worker: the zygote asks once (``prepare``)."""
    if platform.machine() != "x86_64":
        return f"seccomp: kgc's allow-list is written for x86_64, not {platform.machine()}"
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            if "Seccomp:" not in f.read():
                return "seccomp: this kernel was built without it"
    except OSError as exc:
        return f"seccomp: cannot read /proc/self/status: {exc.strerror}"
    return None


def seccomp_install(reason: str | None) -> str:
    """Load the filter; ``reason`` is ``seccomp_supported()``, asked while files were readable."""
    if reason is not None:
        raise LayerUnavailable(reason)
    program = _default_program()
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    try:
        _prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog))
    except OSError as exc:
        raise LayerUnavailable(f"seccomp: loading the filter failed: {exc.strerror}") from exc
    return f"{len(ALLOWED_X86_64)} system calls allowed"


def _no_new_privs() -> bool:
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    return True


# -- all of them, in order ------------------------------------------------------------------


def prepare() -> None:
    """What every worker would otherwise work out again, done once in the zygote before it forks:
    libc, whether seccomp can load (platform and /proc reads took 1.3 ms a worker), the filter."""
    _sys()
    seccomp_supported()
    _default_program()


def confine(config: dict[str, Any]) -> dict[str, Any]:
    """Apply every layer; return what was applied. A missing layer raises ``LayerUnavailable``
    when ``config["strict"]``, and is recorded as ``"missing: why"`` otherwise."""
    strict = bool(config["strict"])
    applied: dict[str, Any] = {}

    def attempt(name: str, step: Any) -> None:
        try:
            applied[name] = step()
        except (LayerUnavailable, OSError) as exc:
            if strict:
                raise LayerUnavailable(f"{name}: {exc}") from None
            applied[name] = f"missing: {exc}"

    # Everything that reads a file happens before Landlock closes the file system.
    _sys()
    seccomp_reason = seccomp_supported()
    attempt(
        "rlimits",
        lambda: set_rlimits(config["memory_bytes"], config["cpu_seconds"], config["descriptors"]),
    )
    attempt("user", lambda: drop_user(config["uid"], config["gid"]))
    detach()
    attempt("no_new_privs", _no_new_privs)
    attempt("landlock", lambda: f"ABI {landlock_deny_all()}")
    attempt("seccomp", lambda: seccomp_install(seccomp_reason))
    return applied
