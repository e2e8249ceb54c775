"""The probe's side of the conversation with the host: events out, requests in.

Events are JSON lines written to the file descriptor named by ``CI_MIGRATE_PROBE_FD`` (the host
passes a pipe), so whatever the app prints on stdout/stderr never mixes with them. Requests are JSON
lines read from stdin by a reader thread. When stdin reaches end-of-file while the probe is not
finishing (the host was killed), the probe removes its private copy (the directory the host made
for it) and ends at once with exit code 75: nothing is left running against a sandbox whose owner
is gone, and nothing is left in the temporary directory. The requests are read from a copy of stdin;
the app's own stdin (fd 0, ``sys.stdin``) is /dev/null, as in CI: an ``input()`` at import gets
end-of-file at once instead of waiting for a request line, and a child process the app starts cannot
take the host's requests.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sys
import tempfile
import threading
from typing import Any, Dict, Optional

from . import COPY_PREFIX

HOST_GONE = 75
_FD_VARIABLE = "CI_MIGRATE_PROBE_FD"


def host_gone() -> None:
    """End the probe now (exit code :data:`HOST_GONE`), removing the private copy it runs from when
    it runs from one (a ``ci_migrate_probe_*`` directory in the temporary directory): a killed host
    cannot remove it. The probe's modules are all imported by then."""
    copy = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if (os.path.basename(copy).startswith(COPY_PREFIX)
            and os.path.dirname(copy) == os.path.abspath(tempfile.gettempdir())):
        shutil.rmtree(copy, ignore_errors=True)
    os._exit(HOST_GONE)


class Channel:
    """Writes events and hands out the host's requests, in order."""

    def __init__(self, out_fd: int, stdin: Any) -> None:
        self.out_fd = out_fd
        self._lock = threading.Lock()
        self._requests: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        self.finishing = False
        self._reader = threading.Thread(target=self._read, args=(stdin,), name="ci-migrate-requests", daemon=True)
        self._reader.start()

    @classmethod
    def from_environment(cls) -> "Channel":
        """The channel the host set up (``CI_MIGRATE_PROBE_FD``); stdout when run by hand."""
        fd = int(os.environ.pop(_FD_VARIABLE, "1"))
        requests = os.fdopen(os.dup(sys.stdin.fileno()), "r", encoding="utf-8")
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, sys.stdin.fileno())
        os.close(null)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - the app's stdin for the whole run
        return cls(fd, requests)

    def emit(self, type_: str, **data: Any) -> None:
        """Send one event: ``{"type": type_, **data}`` as a JSON line (non-JSON values as their str)."""
        line = json.dumps({"type": type_, **data}, default=str, ensure_ascii=False) + "\n"
        payload = line.encode("utf-8")
        with self._lock:
            view = memoryview(payload)
            while view:
                written = os.write(self.out_fd, view)
                view = view[written:]

    def request(self) -> Dict[str, Any]:
        """The next request from the host (blocks). A closed stdin means the host is gone."""
        item = self._requests.get()
        if item is None:
            host_gone()
        return item

    def waiting(self) -> bool:
        """Whether a request (or the end of stdin) is queued: the host is waiting for the probe."""
        return not self._requests.empty()

    def _read(self, stdin: Any) -> None:
        for line in stdin:
            line = line.strip()
            if not line:
                continue
            try:
                message = json.loads(line)
            except ValueError:
                continue
            self._requests.put(message)
            if message.get("op") == "exit":
                self.finishing = True
        if not self.finishing:
            host_gone()
        self._requests.put(None)
