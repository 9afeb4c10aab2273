"""A service that dies of an unhandled exception, run under opentelemetry-instrument.

No crash-reporting code of its own: the project's configurator installs the
hooks. The message carries a planted identifier that must not be exported.
"""

from __future__ import annotations

import sys


def admit(mrn: str) -> None:
    beds: dict[str, str] = {}
    print(beds[f"MRN: {mrn}"])


if __name__ == "__main__":
    admit(sys.argv[1])
