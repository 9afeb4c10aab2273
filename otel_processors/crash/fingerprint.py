"""Group crashes: one fingerprint per bug, whatever the values involved.

The fingerprint is computed from an exception object in the failing process, or
from the text of a traceback (a log line, a faulthandler crash file) anywhere
else; both paths derive every component from the same strings, so
``fingerprint_text("".join(traceback.format_exception(exc)))`` equals
``fingerprint_exception(exc)`` in the same process.

Algorithm, version ``FINGERPRINT_VERSION`` (see docs/crashes.md):

1. Walk the exception chain (``__cause__``, else ``__context__`` unless
   suppressed; cycle-safe), oldest first, as ``traceback`` prints it.
2. Name each frame's module from its file name (``module_from_filename``, with
   the policy's in-app prefixes and application roots) and mark it in-app or
   not (``InAppPolicy``). If any frame of the chain is in-app, only in-app
   frames count; otherwise all frames do.
3. A frame contributes its module, function and whitespace-normalised source
   line, never its line number. Recursion collapses: a run of frames that
   repeats a cycle of up to ``MAX_RECURSION_CYCLE`` frames (one function
   calling itself, or ``a -> b -> a -> b``) keeps one copy of the cycle.
4. Each exception contributes its type. Its message counts only when the whole
   chain has no frame, and then through ``normalise_message``.
5. The value is the first 32 hex digits of the SHA-256 of the version and the
   components, one per line.
"""

from __future__ import annotations

import hashlib
import linecache
import re
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Final

__all__ = [
    "FINGERPRINT_VERSION",
    "MAX_RECURSION_CYCLE",
    "Fingerprint",
    "Frame",
    "InAppPolicy",
    "ParsedException",
    "exception_type_name",
    "fingerprint_exception",
    "fingerprint_parsed",
    "fingerprint_text",
    "module_from_filename",
    "normalise_message",
    "parse_traceback",
]

# 2: cycles of up to MAX_RECURSION_CYCLE frames collapse; with in-app prefixes
# the module is read from the path segments that match them.
FINGERPRINT_VERSION: Final = 2
MAX_RECURSION_CYCLE: Final = 4

_HASH_HEX_DIGITS: Final = 32


@dataclass(frozen=True)
class Frame:
    """One stack frame as it counts for grouping.

    Attributes:
        module: dotted module name derived from ``filename``.
        function: the function's name (``<module>`` at top level).
        context_line: the source line, whitespace-normalised; empty if unknown.
        filename: the file as reported by the interpreter.
        lineno: the line number; shown to people, never hashed.
        in_app: whether the frame belongs to the application.
    """

    module: str
    function: str
    context_line: str
    filename: str
    lineno: int | None
    in_app: bool


@dataclass(frozen=True)
class Fingerprint:
    """The group a crash belongs to, with what made it.

    Attributes:
        value: 32 hex digits.
        version: the algorithm's version, part of the hashed input.
        basis: ``"frames"`` or ``"message"`` (when no frame was available).
        exception_types: the types of the chain, oldest first.
        frames: the frames that were hashed, oldest first.
    """

    value: str
    version: int
    basis: str
    exception_types: tuple[str, ...]
    frames: tuple[Frame, ...]


@dataclass(frozen=True)
class ParsedException:
    """One exception of a chain read from text.

    Attributes:
        type: the type as printed (``ValueError``, ``pkg.mod.Error``, ``SIGSEGV``).
        message: the message, possibly empty.
        frames: the stack, oldest call first.
    """

    type: str
    message: str
    frames: tuple[Frame, ...]


# Where third-party and standard library code lives, on this machine or another.
_THIRD_PARTY_RE: Final = re.compile(r"/(?:site|dist)-packages/")
_STDLIB_RE: Final = re.compile(r"/lib(?:64)?/python\d+(?:\.\d+)?t?/")
_FROZEN_RE: Final = re.compile(r"^<frozen ([\w.]+)>$")


def _stdlib_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths.get("stdlib", ""), paths.get("platstdlib", "")}
    return tuple(sorted(_slash(root) + "/" for root in roots if root))


def _slash(path: str) -> str:
    return path.replace("\\", "/").rstrip("/")


_STDLIB_ROOTS: Final = _stdlib_roots()


@lru_cache(maxsize=64)
def _longest_first(entries: tuple[str, ...]) -> tuple[str, ...]:
    roots = {_slash(entry) + "/" for entry in entries if entry and entry != "."}
    return tuple(sorted(roots, key=len, reverse=True))


def _dotted(relative: str) -> str:
    if relative.endswith(".py"):
        relative = relative[: -len(".py")]
    parts = [part for part in relative.split("/") if part]
    if len(parts) > 1 and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_from_filename(
    filename: str,
    *,
    prefixes: Sequence[str] = (),
    app_roots: Sequence[str] | None = None,
) -> str:
    """Derive a dotted module name from a frame's file name.

    The same rules apply to live frames and to text from another machine,
    in this order: pseudo-files such as ``<stdin>`` are kept as they are;
    everything up to ``site-packages/``, ``dist-packages/`` or
    ``lib/pythonX.Y/`` is dropped; with ``prefixes``, the path from the last
    run of path segments (directories, then the file's name without ``.py``)
    that spells one of them (``readmit.api`` matches ``.../readmit/api/``
    and ``.../readmit/api.py``); then the longest
    matching root of ``app_roots`` (default: this process's ``sys.path``);
    otherwise the file's name alone. Only the first two rules and the
    prefixes read nothing of the machine, so text fingerprinted elsewhere
    agrees when the same prefixes, or the same roots, are given.

    Args:
        filename: the file name of the frame.
        prefixes: in-app module prefixes, e.g. ``("readmit",)``.
        app_roots: directories to strip, in place of ``sys.path``.

    Returns:
        The module name, e.g. ``requests.adapters``.
    """
    roots = _longest_first(tuple(sys.path if app_roots is None else app_roots))
    return _module_of(filename, tuple(prefixes), roots)


@lru_cache(maxsize=8192)
def _module_of(filename: str, prefixes: tuple[str, ...], roots: tuple[str, ...]) -> str:
    frozen = _FROZEN_RE.match(filename)
    if frozen:
        return frozen.group(1)
    if filename.startswith("<"):
        return filename

    path = _slash(filename)
    third_party = list(_THIRD_PARTY_RE.finditer(path))
    if third_party:
        return _dotted(path[third_party[-1].end() :])
    stdlib = list(_STDLIB_RE.finditer(path))
    if stdlib:
        return _dotted(path[stdlib[-1].end() :])
    from_prefix = _module_from_prefixes(path, prefixes)
    if from_prefix:
        return from_prefix
    for root in roots:
        if path.startswith(root):
            return _dotted(path[len(root) :])
    return _dotted(path.rsplit("/", 1)[-1])


def _module_from_prefixes(path: str, prefixes: tuple[str, ...]) -> str:
    parts = [part for part in path.split("/") if part]
    if not parts or not prefixes:
        return ""
    stem = parts[-1][: -len(".py")] if parts[-1].endswith(".py") else parts[-1]
    names = [*parts[:-1], stem]

    # The last match wins: /home/ci/readmit/src/readmit/api.py is readmit.api.
    best = -1
    for prefix in prefixes:
        wanted = [name for name in prefix.split(".") if name]
        if not wanted:
            continue
        for start in range(len(names) - len(wanted), -1, -1):
            if names[start : start + len(wanted)] == wanted:
                best = max(best, start)
                break
    return _dotted("/".join(parts[best:])) if best >= 0 else ""


@lru_cache(maxsize=4096)
def _is_library_file(filename: str) -> bool:
    if _FROZEN_RE.match(filename):
        return True
    path = _slash(filename)
    if _THIRD_PARTY_RE.search(path) or _STDLIB_RE.search(path):
        return True
    return any(path.startswith(root) for root in _STDLIB_ROOTS)


def _matches(module: str, prefixes: Sequence[str]) -> bool:
    for prefix in prefixes:
        bare = prefix.rstrip(".")
        if module == bare or module.startswith(bare + "."):
            return True
    return False


_MAX_DECISIONS: Final = 4096


class InAppPolicy:
    """Decide which frames belong to the application.

    With no ``include`` prefix, every frame outside the standard library,
    ``site-packages`` and ``dist-packages`` is in-app. With ``include``
    prefixes, only frames whose module starts with one of them are. Frames
    whose module starts with an ``exclude`` prefix never are.

    The policy also names modules (``module_from_filename``): from the path
    segments that match an ``include`` prefix, else by stripping the longest
    matching ``app_roots`` directory, by default an entry of ``sys.path``.

    Args:
        include: module prefixes of the application, e.g. ``("readmit",)``.
        exclude: module prefixes never in-app, e.g. ``("readmit.vendor",)``.
        app_roots: directories whose files are named relative to them, in
            place of ``sys.path`` (to read text from another machine).
    """

    def __init__(
        self,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        *,
        app_roots: Sequence[str] | None = None,
    ) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self.app_roots = None if app_roots is None else tuple(app_roots)
        self._decisions: dict[tuple[str, str], bool] = {}

    @property
    def names_modules(self) -> bool:
        """Whether module names differ from ``module_from_filename``'s default."""
        return bool(self.include) or self.app_roots is not None

    def module_of(self, filename: str) -> str:
        """Return the module name of a frame's file under this policy."""
        return module_from_filename(
            filename, prefixes=self.include, app_roots=self.app_roots
        )

    def is_in_app(self, module: str, filename: str) -> bool:
        """Return whether a frame of ``module`` loaded from ``filename`` is in-app."""
        key = (module, filename)
        decision = self._decisions.get(key)
        if decision is None:
            if len(self._decisions) >= _MAX_DECISIONS:
                self._decisions.clear()
            decision = self._decide(module, filename)
            self._decisions[key] = decision
        return decision

    def _decide(self, module: str, filename: str) -> bool:
        if _matches(module, self.exclude):
            return False
        if self.include:
            return _matches(module, self.include)
        return not _is_library_file(filename)

    def __repr__(self) -> str:
        return (
            f"InAppPolicy(include={self.include!r}, exclude={self.exclude!r}, "
            f"app_roots={self.app_roots!r})"
        )


_DEFAULT_POLICY: Final = InAppPolicy()


def _normalise_line(line: str | None) -> str:
    if not line:
        return ""
    first = line.strip().splitlines()[0] if line.strip() else ""
    return " ".join(first.split())


@lru_cache(maxsize=8192)
def _make_frame(
    filename: str, function: str, line: str | None, lineno: int | None
) -> Frame:
    return Frame(
        module=module_from_filename(filename),
        function=function,
        context_line=_normalise_line(line),
        filename=filename,
        lineno=lineno,
        in_app=False,
    )


def exception_type_name(exc_type: type[BaseException]) -> str:
    """Name a type as ``traceback`` prints it (module-qualified but for builtins
    and ``__main__``)."""
    module = exc_type.__module__
    if module in ("builtins", "__main__"):
        return exc_type.__qualname__
    return f"{module}.{exc_type.__qualname__}"


def _chain_from_exception(exc: BaseException) -> list[ParsedException]:
    # The chain rule and cycle guard of traceback.TracebackException, walked
    # directly: building TracebackException objects costs several times more.
    chain: list[ParsedException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(
            ParsedException(
                exception_type_name(type(current)),
                _first_line(_safe_str(current)),
                _frames_of(current.__traceback__),
            )
        )
        if current.__cause__ is not None:
            current = current.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    chain.reverse()
    return chain


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # mirrors traceback's "<exception str() failed>"
        return "<exception str() failed>"


def _frames_of(tb: TracebackType | None) -> tuple[Frame, ...]:
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        lineno = tb.tb_lineno
        line = (
            linecache.getline(code.co_filename, lineno, tb.tb_frame.f_globals)
            if lineno is not None
            else ""
        )
        frames.append(_make_frame(code.co_filename, code.co_name, line, lineno))
        tb = tb.tb_next
    return tuple(frames)


def _first_line(message: str) -> str:
    lines = message.strip().splitlines()
    return lines[0].strip() if lines else ""


# Message placeholders, applied in order: the more specific shapes first.
_PLACEHOLDERS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
            r"[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+"), "<url>"),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
        "<datetime>",
    ),
    (re.compile(r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"), "<datetime>"),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\b"), "<datetime>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b(?:[0-9a-fA-F]{1,4}:){2,7}[0-9a-fA-F]{1,4}\b"), "<ip>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<quoted>"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@~+-]+){2,}[\\/]?"), "<path>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b[0-9a-fA-F]{16,}\b"), "<hash>"),
    (
        re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"),
        "<hash>",
    ),
    (re.compile(r"[-+]?\b\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?"), "<num>"),
)


def normalise_message(message: str) -> str:
    """Replace the variable parts of a message by placeholders.

    UUIDs, e-mail addresses, URLs, dates and times, IP addresses, quoted
    values, paths, hex ids, hashes and numbers become ``<uuid>``, ``<email>``,
    ``<url>``, ``<datetime>``, ``<ip>``, ``<quoted>``, ``<path>``, ``<hex>``,
    ``<hash>`` and ``<num>``; whitespace is collapsed.

    Args:
        message: an exception message.

    Returns:
        The message with placeholders, e.g. ``"no patient <quoted> in <num> ms"``.
    """
    text = message
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def _with_policy(
    chain: Sequence[ParsedException], policy: InAppPolicy
) -> list[ParsedException]:
    return [
        ParsedException(
            parsed.type,
            parsed.message,
            tuple(_marked(frame, policy) for frame in parsed.frames),
        )
        for parsed in chain
    ]


def _marked(frame: Frame, policy: InAppPolicy) -> Frame:
    module = policy.module_of(frame.filename) if policy.names_modules else frame.module
    in_app = policy.is_in_app(module, frame.filename)
    if in_app == frame.in_app and module == frame.module:
        return frame
    return Frame(
        module,
        frame.function,
        frame.context_line,
        frame.filename,
        frame.lineno,
        in_app,
    )


def _collapse(frames: Iterable[Frame]) -> list[Frame]:
    # After each frame, drop a cycle that repeats the one just before it, so
    # any number of rounds of a cycle of at most MAX_RECURSION_CYCLE frames
    # leaves one round; the shortest cycle is tried first.
    kept: list[Frame] = []
    keys: list[tuple[str, str, str]] = []
    for frame in frames:
        kept.append(frame)
        keys.append((frame.module, frame.function, frame.context_line))
        folded = True
        while folded:
            folded = False
            for size in range(1, min(MAX_RECURSION_CYCLE, len(keys) // 2) + 1):
                if keys[-size:] == keys[-2 * size : -size]:
                    del kept[-size:], keys[-size:]
                    folded = True
                    break
    return kept


def _fingerprint_chain(
    chain: Sequence[ParsedException], policy: InAppPolicy | None
) -> Fingerprint:
    marked = _with_policy(chain, policy or _DEFAULT_POLICY)
    any_in_app = any(frame.in_app for parsed in marked for frame in parsed.frames)
    has_frames = any(parsed.frames for parsed in marked)

    components = [f"version:{FINGERPRINT_VERSION}"]
    used: list[Frame] = []
    for parsed in marked:
        components.append(f"type:{parsed.type}")
        kept = [f for f in parsed.frames if f.in_app or not any_in_app]
        for frame in _collapse(kept):
            used.append(frame)
            components.append(
                f"frame:{frame.module}|{frame.function}|{frame.context_line}"
            )
        if not has_frames:
            components.append(f"message:{normalise_message(parsed.message)}")

    digest = hashlib.sha256("\n".join(components).encode("utf-8")).hexdigest()
    return Fingerprint(
        value=digest[:_HASH_HEX_DIGITS],
        version=FINGERPRINT_VERSION,
        basis="frames" if has_frames else "message",
        exception_types=tuple(parsed.type for parsed in marked),
        frames=tuple(used),
    )


def fingerprint_exception(
    exc: BaseException, *, in_app: InAppPolicy | None = None
) -> Fingerprint:
    """Fingerprint an exception object and its chain.

    Args:
        exc: the exception, with its ``__traceback__`` if it was raised.
        in_app: which frames belong to the application; default: all but the
            standard library and installed packages.

    Returns:
        The fingerprint.
    """
    return _fingerprint_chain(_chain_from_exception(exc), in_app)


def fingerprint_parsed(
    chain: Sequence[ParsedException], *, in_app: InAppPolicy | None = None
) -> Fingerprint:
    """Fingerprint a chain already parsed (or built) as ``ParsedException``.

    Args:
        chain: the exceptions, oldest first.
        in_app: as for ``fingerprint_exception``.

    Returns:
        The fingerprint.
    """
    return _fingerprint_chain(chain, in_app)


class TracebackNotFoundError(ValueError):
    """The text holds no Python traceback nor faulthandler stack."""


def fingerprint_text(
    traceback_text: str, *, in_app: InAppPolicy | None = None
) -> Fingerprint:
    """Fingerprint the text of a traceback or of a faulthandler crash file.

    Args:
        traceback_text: the text, possibly with a log prefix on each line.
        in_app: as for ``fingerprint_exception``.

    Returns:
        The fingerprint.

    Raises:
        TracebackNotFoundError: the text holds no traceback.
    """
    chain = parse_traceback(traceback_text)
    if not chain:
        msg = "no Python traceback or faulthandler stack found in the text"
        raise TracebackNotFoundError(msg)
    return _fingerprint_chain(chain, in_app)


# Text formats: traceback.format_exception and faulthandler.dump_traceback.
_TRACEBACK_HEADER: Final = "Traceback (most recent call last):"
_CAUSE_SEPARATORS: Final = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_FRAME_RE: Final = re.compile(
    r'^\s*File "(?P<file>.*)", line (?P<line>\d+), in (?P<func>.+)$'
)
_FAULT_FRAME_RE: Final = re.compile(
    r'^\s*File "(?P<file>.*)", line (?P<line>\d+|\?\?\?) in (?P<func>.+)$'
)
_FATAL_RE: Final = re.compile(r"^Fatal Python error: (?P<reason>.+)$")
_CURRENT_THREAD_RE: Final = re.compile(
    r"^(?:Current thread|Stack) .*\(most recent call first\):$"
)
_EXCEPTION_LINE_RE: Final = re.compile(
    r"^(?P<type>[A-Za-z_][\w.]*(?:\[[^\]]*\])?)(?::\s?(?P<message>.*))?$"
)
_CARET_RE: Final = re.compile(r"^\s*[~^]+\s*$")
_BARE_EXCEPTION_RE: Final = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*"
    r"(?:Error|Exception|Warning|Exit|Interrupt|Iteration|Group)(?::.*)?$"
)

_SIGNAL_NAMES: Final = {
    "Segmentation fault": "SIGSEGV",
    "Aborted": "SIGABRT",
    "Bus error": "SIGBUS",
    "Floating-point exception": "SIGFPE",
    "Floating point exception": "SIGFPE",
    "Illegal instruction": "SIGILL",
}


def signal_type(reason: str) -> str:
    """Map faulthandler's reason (``Segmentation fault``) to ``SIGSEGV`` etc."""
    return _SIGNAL_NAMES.get(reason.strip(), "FatalError")


def _strip_prefix(lines: list[str]) -> list[str]:
    # A log prefix is whatever precedes the first header line; lines that carry
    # the same prefix, or one of the same shape (other digits), lose it.
    for line in lines:
        for header in (_TRACEBACK_HEADER, "Fatal Python error: "):
            position = line.find(header)
            if position > 0:
                return _drop_prefix(lines, line[:position])
            if position == 0:
                return lines
    return lines


def _drop_prefix(lines: list[str], prefix: str) -> list[str]:
    shape = re.compile(re.escape(re.sub(r"\d", "0", prefix)).replace("0", r"\d"))
    stripped = []
    for line in lines:
        if line.startswith(prefix):
            stripped.append(line[len(prefix) :])
            continue
        match = shape.match(line)
        stripped.append(line[match.end() :] if match else line)
    return stripped


def parse_traceback(traceback_text: str) -> list[ParsedException]:
    """Read the first exception chain, or faulthandler stack, from text.

    Understands ``traceback.format_exception`` output with its chain
    separators ("The above exception was the direct cause...", "During
    handling of the above exception..."), caret lines and "[Previous line
    repeated N more times]", and faulthandler's "Fatal Python error: ..."
    output (the current thread's stack only, reversed to oldest first, with
    the type named after the signal, e.g. ``SIGSEGV``). A prefix common to the
    lines (a log prefix) is tolerated. Only the first line of a message is
    kept.

    Args:
        traceback_text: the text.

    Returns:
        The chain, oldest exception first; empty if no traceback was found.
    """
    lines = _strip_prefix(traceback_text.splitlines())
    for index, line in enumerate(lines):
        if line.strip() == _TRACEBACK_HEADER or _starts_chain(lines, index):
            return _parse_python(lines, index)
        fatal = _FATAL_RE.match(line.strip())
        if fatal:
            return [_parse_faulthandler(lines[index + 1 :], fatal.group("reason"))]

    # An exception that was never raised prints as its bare exception line.
    for index, line in enumerate(lines):
        if _BARE_EXCEPTION_RE.match(line):
            return _parse_python(lines, index)
    return []


def _starts_chain(lines: list[str], index: int) -> bool:
    line = lines[index]
    if line.startswith(" ") or not _EXCEPTION_LINE_RE.match(line.strip()):
        return False
    return _followed_by_separator(lines, index + 1)


def _parse_python(lines: list[str], start: int) -> list[ParsedException]:
    chain: list[ParsedException] = []
    frames: list[Frame] = []
    pending: tuple[str, str, int] | None = None

    for index in range(start, len(lines)):
        raw = lines[index]
        line = raw.strip()
        if line == _TRACEBACK_HEADER:
            frames, pending = [], None
            continue

        frame_match = _FRAME_RE.match(raw)
        if frame_match:
            if pending:
                frames.append(_make_frame(pending[0], pending[1], None, pending[2]))
            pending = (
                frame_match.group("file"),
                frame_match.group("func").strip(),
                int(frame_match.group("line")),
            )
            continue

        if not line or _CARET_RE.match(raw) or line.startswith("[Previous line"):
            continue
        if raw.startswith(" "):
            # The source line of the frame above (absent when unavailable).
            if pending:
                frames.append(_make_frame(pending[0], pending[1], line, pending[2]))
                pending = None
            continue

        if line in _CAUSE_SEPARATORS:
            continue
        if pending:
            frames.append(_make_frame(pending[0], pending[1], None, pending[2]))
            pending = None
        exception = _EXCEPTION_LINE_RE.match(line)
        if not exception:
            break
        chain.append(
            ParsedException(
                exception.group("type"),
                (exception.group("message") or "").strip(),
                tuple(frames),
            )
        )
        frames = []
        if not _followed_by_separator(lines, index + 1):
            break
    return chain


def _followed_by_separator(lines: list[str], index: int) -> bool:
    for line in lines[index:]:
        stripped = line.strip()
        if stripped:
            return stripped in _CAUSE_SEPARATORS
    return False


def _parse_faulthandler(lines: list[str], reason: str) -> ParsedException:
    frames: list[Frame] = []
    in_current = False
    for raw in lines:
        line = raw.strip()
        if _CURRENT_THREAD_RE.match(line):
            in_current = True
            continue
        if not in_current:
            continue
        match = _FAULT_FRAME_RE.match(raw)
        if not match:
            if frames or not line:
                break
            continue
        lineno = match.group("line")
        frames.append(
            _make_frame(
                match.group("file"),
                match.group("func").strip(),
                None,
                int(lineno) if lineno.isdigit() else None,
            )
        )
    frames.reverse()
    return ParsedException(
        signal_type(reason), f"Fatal Python error: {reason}", tuple(frames)
    )
