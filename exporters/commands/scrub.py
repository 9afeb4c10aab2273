"""The ``scrub`` subcommand: remove patient data from a log stream.

Reads standard input and writes the scrubbed text to standard output as it
goes, so logs of any size pass through in constant memory. Bytes that are not
UTF-8 pass through unchanged (they are carried as surrogate escapes). With
``--json-lines`` each line is a JSON value scrubbed by key and by value; a
line that is not JSON is reported on standard error with its number and is
still written, scrubbed as text.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO, Final

from opentelemetry.util.types import AnyValue

from exporters.commands import Subparsers
from exporters.errors import CommandError
from otel_processors.errors import ConfigurationError
from otel_processors.scrubber import PATTERNS_ENV, Scrubber

__all__ = ["register"]

_CHUNK_BYTES: Final = 64 * 1024
# A line longer than this is scrubbed in pieces rather than held whole.
_MAX_PENDING_BYTES: Final = 1024 * 1024
# A JSON value must be parsed whole: its line may be this long.
_MAX_JSON_LINE_BYTES: Final = 64 * 1024 * 1024
# Longer than any identifier a pattern can match (the longest, tokens, stop
# at about 4 KiB): a cut with this much text on both sides unchanged by
# cutting there splits no identifier.
_OVERLAP_BYTES: Final = 8 * 1024
_CUT_ATTEMPTS: Final = 16
_ENCODING: Final = "utf-8"
_ERRORS: Final = "surrogateescape"

_DESCRIPTION = f"""\
Remove patient data from text read on standard input and write the result to
standard output, streaming: SSNs, MRNs, names in context, dates of birth,
phone numbers, e-mail and street addresses, ZIP codes, IP addresses, card
numbers, NPIs, Medicare ids, account ids, URL credentials and tokens are
replaced by [REDACTED:KIND]. Bytes that are not UTF-8 pass through as they
are. With --json-lines, a line that is not JSON is reported on stderr with its
number and still written, scrubbed as text. Exit status 2 on a bad patterns
file.

Extra patterns and key lists come from --patterns, or else from the file
named by {PATTERNS_ENV}; the format is YAML:

  patterns: {{BED: 'bed \\d{{3}}[A-Z]'}}
  allow_keys: [app.ward.*]
  redact_keys: [insurer_ref]

examples:
  healthai-telemetry scrub < app.log > app.scrubbed.log
  kubectl logs pod/scorer | healthai-telemetry scrub --stats
  healthai-telemetry scrub --json-lines < events.jsonl > clean.jsonl
"""


def register(subparsers: Subparsers) -> None:
    """Add the ``scrub`` parser."""
    parser = subparsers.add_parser(
        "scrub",
        help="remove patient data from a log stream (stdin to stdout)",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--patterns",
        metavar="FILE",
        help=f"YAML file of extra patterns and keys (default: ${PATTERNS_ENV})",
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="print the number of replacements by kind to stderr at the end",
    )
    parser.add_argument(
        "--json-lines",
        action="store_true",
        help="read one JSON value per line; scrub values by key and by content",
    )
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    scrubber = _build_scrubber(args.patterns)
    source = sys.stdin.buffer
    sink = sys.stdout.buffer

    try:
        if args.json_lines:
            lines, invalid = _scrub_json_lines(scrubber, source, sink)
        else:
            lines, invalid = _scrub_text(scrubber, source, sink), 0
        sink.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0

    if args.stats:
        _print_stats(scrubber, lines, invalid)
    return 0


def _build_scrubber(patterns: str | None) -> Scrubber:
    try:
        if patterns is not None:
            return Scrubber.from_file(patterns)
        return Scrubber.from_env()
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc


def _scrub_text(scrubber: Scrubber, source: IO[bytes], sink: IO[bytes]) -> int:
    """Scrub whole lines, a chunk at a time; return the number of lines."""
    count = 0
    block = b""
    for block, _ in _line_blocks(source, _MAX_PENDING_BYTES, _safe_cut(scrubber)):
        count += block.count(b"\n")
        text = block.decode(_ENCODING, _ERRORS)
        sink.write(_encode(scrubber.scrub(text)))
        sink.flush()
    if block and not block.endswith(b"\n"):
        count += 1  # the last line has no newline
    return count


def _scrub_json_lines(
    scrubber: Scrubber, source: IO[bytes], sink: IO[bytes]
) -> tuple[int, int]:
    """Scrub one JSON value per line; return the line and invalid-line counts."""
    number = invalid = 0
    long_line = False
    pieces = _line_blocks(source, _MAX_JSON_LINE_BYTES, _safe_cut(scrubber))
    for block, whole in pieces:
        if not whole or long_line:
            # A line too long to hold is scrubbed as text, piece by piece.
            if not long_line:
                print(
                    f"healthai-telemetry scrub: line {number + 1}: longer than "
                    f"{_MAX_JSON_LINE_BYTES // (1024 * 1024)} MiB; scrubbed as text",
                    file=sys.stderr,
                )
            end = len(block) if not whole else block.find(b"\n") + 1 or len(block)
            sink.write(_encode(scrubber.scrub(block[:end].decode(_ENCODING, _ERRORS))))
            sink.flush()
            long_line = not whole
            if whole:
                number += 1
            block = block[end:]
            if not block:
                continue
        out: list[bytes] = []
        for raw in block.splitlines(keepends=True):
            number += 1
            line = raw.decode(_ENCODING, _ERRORS)
            body = line.rstrip("\r\n")
            ending = line[len(body) :]
            if not body.strip():
                out.append(raw)
                continue
            try:
                value = _parse(body)
            except ValueError as exc:
                invalid += 1
                print(
                    f"healthai-telemetry scrub: line {number}: invalid JSON "
                    f"({_reason(exc)}); scrubbed as text",
                    file=sys.stderr,
                )
                out.append(_encode(scrubber.scrub(body) + ending))
                continue
            out.append(_encode(_dump(scrubber.scrub_value(value)) + ending))
        sink.write(b"".join(out))
        sink.flush()
    return number, invalid


def _line_blocks(
    source: IO[bytes], max_pending: int, cut_long: Callable[[bytes], int]
) -> Iterator[tuple[bytes, bool]]:
    """Yield blocks of complete lines as they arrive, in bounded memory.

    ``read1`` returns what one read of the pipe gives, so a slow producer's
    lines come out promptly and a fast one's in large blocks. A line longer
    than ``max_pending`` comes out in pieces, cut where ``cut_long`` says;
    each block comes with whether it ends where a line ends.
    """
    read = getattr(source, "read1", source.read)
    pending = b""
    while True:
        chunk = read(_CHUNK_BYTES)
        if not chunk:
            break
        pending += chunk
        cut = pending.rfind(b"\n") + 1
        if cut:
            yield pending[:cut], True
            pending = pending[cut:]
        while len(pending) >= max_pending:
            cut = cut_long(pending)
            yield pending[:cut], False
            pending = pending[cut:]
    if pending:
        yield pending, True


def _safe_cut(scrubber: Scrubber) -> Callable[[bytes], int]:
    """Return a function choosing where to cut an over-long line.

    A cut must not split an identifier ("SSN 123-4" | "5-6789"): the cut
    goes at a space or tab where scrubbing the text around it whole gives the
    same as scrubbing its two sides apart, searching back from the end. When
    no such place is found in a few tries, the line is cut at the last one.
    """

    def scrub(data: bytes) -> str:
        return scrubber.scrub(data.decode(_ENCODING, _ERRORS))

    def cut(data: bytes) -> int:
        end = len(data) - _OVERLAP_BYTES
        for _ in range(_CUT_ATTEMPTS):
            space = max(data.rfind(b" ", 0, end), data.rfind(b"\t", 0, end))
            if space <= _OVERLAP_BYTES:
                break
            left = data[space - _OVERLAP_BYTES : space + 1]
            right = data[space + 1 : space + 1 + _OVERLAP_BYTES]
            if scrub(left + right) == scrub(left) + scrub(right):
                return space + 1
            end = space
        return len(data) - _OVERLAP_BYTES

    return cut


def _parse(line: str) -> AnyValue:
    """Parse one JSON line, refusing what could not be written back as read.

    Repeated keys would lose all values but the last, and numbers beyond the
    float range would come back as ``Infinity``, which is not JSON: such lines
    are scrubbed as text instead.
    """
    value: AnyValue = json.loads(
        line, object_pairs_hook=_unique_keys, parse_float=_finite_float
    )
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} repeated")
        result[key] = value
    return result


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text} out of range")
    return value


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _encode(text: str) -> bytes:
    try:
        return text.encode(_ENCODING, _ERRORS)
    except UnicodeEncodeError:
        # A JSON escape such as "\ud800" decodes to a lone surrogate that no
        # UTF-8 can carry: write it escaped again.
        return text.encode(_ENCODING, "backslashreplace")


def _reason(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc)


def _print_stats(scrubber: Scrubber, lines: int, invalid: int) -> None:
    counts = Counter(scrubber.stats())
    print(
        f"healthai-telemetry scrub: {lines} lines, {sum(counts.values())} replacements",
        file=sys.stderr,
    )
    for kind, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {kind:<12} {count}", file=sys.stderr)
    if invalid:
        print(f"  invalid JSON lines: {invalid}", file=sys.stderr)
