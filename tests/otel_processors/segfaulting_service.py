"""A service run under opentelemetry-instrument that dies of a segfault on demand.

``python segfaulting_service.py segv`` reads address 0 and is killed by
SIGSEGV; with no argument it starts and exits cleanly, which is when the
project sends the crash reports earlier processes left in the spool.
"""

from __future__ import annotations

import ctypes
import sys


def read_null_pointer() -> None:
    ctypes.string_at(0)


if __name__ == "__main__":
    if sys.argv[1:] == ["segv"]:
        read_null_pointer()
