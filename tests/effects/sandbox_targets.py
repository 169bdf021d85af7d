"""Targets for the attack suite, and what the effect tests share.

The targets are the test's own: a TCP and a UDP listener on loopback, a Unix socket in a
world-accessible directory, an abstract Unix socket, a victim process, a world-readable secret
file and a world-writable directory. Each is only reachable if a layer fails: the directories are
opened up so that file permissions alone would not stop the sandbox user.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass

SECRET = "kgc-test-secret-6d1f0c"
BENIGN = "def run(event):\n    return {'echo': event.get('n', 0) + 1}\n"


@dataclass
class Targets:
    tcp: socket.socket
    udp: socket.socket
    unix: socket.socket
    unix_path: str
    abstract: socket.socket
    abstract_name: str
    victim: subprocess.Popen[bytes]
    secret_file: str
    open_dir: str

    def event(self) -> dict[str, object]:
        return {
            "tcp_port": self.tcp.getsockname()[1],
            "udp_port": self.udp.getsockname()[1],
            "unix_path": self.unix_path,
            "abstract": self.abstract_name,
            "victim": self.victim.pid,
            "secret_file": self.secret_file,
            "open_dir": self.open_dir,
            "parent": os.getpid(),
        }

    def nothing_reached(self) -> list[str]:
        """Which targets were touched (empty when none was)."""
        touched = []
        for name, sock in (("tcp", self.tcp), ("unix", self.unix), ("abstract", self.abstract)):
            sock.setblocking(False)
            try:
                conn, _ = sock.accept()
                conn.close()
                touched.append(name)
            except BlockingIOError:
                pass
        self.udp.setblocking(False)
        try:
            self.udp.recv(100)
            touched.append("udp")
        except BlockingIOError:
            pass
        if self.victim.poll() is not None:
            touched.append("victim")
        if os.listdir(self.open_dir):
            touched.append("open_dir")
        return touched
