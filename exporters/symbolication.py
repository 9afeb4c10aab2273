"""Symbolicate native frames from a Breakpad symbol store.

A native frame, as Crashpad or a minidump stack walker reports it, is a module
(its debug file name, e.g. ``libdemo.so``), the module's debug id and an offset
from the module's load address. The symbol store holds one Breakpad text symbol
file per module build, laid out as Mozilla's and Google's symbol servers lay
them out::

    <debug_file>/<BREAKPAD_ID>/<debug_file without .pdb>.sym

where ``BREAKPAD_ID`` is the debug id as 32 upper-case hex digits of the GUID
followed by the age in hex (``0123456789ABCDEF0123456789ABCDEF0``). A source is a
folder or an HTTP(S) URL; sources are tried in order.

Parsing and lookup use Sentry's ``symbolic``: ``Archive.from_bytes`` reads the
Breakpad format (MODULE, FILE, FUNC, line and PUBLIC records) and the object's
``SymCache`` answers address lookups, including the Breakpad rule that a PUBLIC
symbol extends to the next symbol. Parsed files are kept in a small LRU; files
downloaded over HTTP are also written to an on-disk cache. A symbol file found
in no source is remembered as missing for ``miss_ttl_seconds`` only, so symbols
uploaded after a crash arrived are found by later reports.

A frame that cannot be resolved (unknown module or id, unreachable server,
malformed file, offset outside every function) comes back with ``resolved``
false rather than as an error: a crash report must survive missing symbols.

Reference: https://chromium.googlesource.com/breakpad/breakpad/+/HEAD/docs/symbol_files.md
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from symbolic.debuginfo import Archive, normalize_debug_id
from symbolic.exceptions import SymbolicError

__all__ = ["NativeFrame", "SymbolicatedFrame", "Symbolicator", "breakpad_id"]

_logger = logging.getLogger(__name__)

# A debug file name is used as a path component: refuse anything that could
# leave the store (separators, "..", control characters).
_SAFE_DEBUG_FILE = re.compile(r"^[A-Za-z0-9_.+@-]{1,255}$")
_MAX_SYMBOL_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class NativeFrame:
    """A frame in native code, before symbolication.

    Args:
        module: the module's debug file name, e.g. ``libdemo.so``.
        debug_id: the debug id, in Breakpad form or as a GUID with age.
        offset: the instruction's offset from the module's load address.
    """

    module: str
    debug_id: str
    offset: int


@dataclass(frozen=True)
class SymbolicatedFrame:
    """A native frame with what the symbols say about it.

    ``function``, ``file`` and ``line`` are ``None`` when unknown; ``resolved``
    is true when a function was found.
    """

    module: str
    debug_id: str
    offset: int
    function: str | None = None
    file: str | None = None
    line: int | None = None

    @property
    def resolved(self) -> bool:
        """Whether a function name was found for the frame."""
        return self.function is not None

    def to_json(self) -> dict[str, Any]:
        """Return the frame as a JSON-ready mapping."""
        return {
            "module": self.module,
            "debug_id": self.debug_id,
            "offset": f"0x{self.offset:x}",
            "function": self.function,
            "file": self.file,
            "line": self.line,
        }


def breakpad_id(debug_id: str) -> str:
    """Return ``debug_id`` in the Breakpad form used in symbol store paths.

    Args:
        debug_id: a Breakpad id (``0123...EF0``) or a GUID with optional age
            (``01234567-89ab-cdef-0123-456789abcdef-1a``).

    Returns:
        32 upper-case hex digits and the age in upper-case hex.

    Raises:
        ValueError: ``debug_id`` is not a debug id.
    """
    try:
        normalised = normalize_debug_id(debug_id)
    except SymbolicError as exc:
        msg = f"{debug_id[:80]!r} is not a debug id"
        raise ValueError(msg) from exc

    parts = normalised.split("-")
    guid = "".join(parts[:5]).upper()
    age = parts[5].upper() if len(parts) > 5 else "0"
    return f"{guid}{age}"


def _symbol_file_name(debug_file: str) -> str:
    stem = debug_file[:-4] if debug_file.lower().endswith(".pdb") else debug_file
    return f"{stem}.sym"


class Symbolicator:
    """Resolve native frames against Breakpad symbol stores.

    Args:
        sources: folders or ``http(s)://`` URLs, tried in order.
        cache_dir: where files downloaded over HTTP are kept between runs;
            ``None`` keeps nothing on disk.
        timeout_seconds: connect and read timeout of each HTTP request.
        max_cached_modules: parsed symbol files kept in memory (and, as
            many again, missing ones).
        miss_ttl_seconds: how long a symbol file found in no source is not
            looked for again; 0 looks every time.
        clock: monotonic time in seconds (injectable for tests).

    Raises:
        ValueError: no source, a source that is neither a folder nor a URL,
            or a size or duration out of range.
    """

    def __init__(
        self,
        sources: Sequence[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout_seconds: float = 5.0,
        max_cached_modules: int = 32,
        miss_ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not sources:
            msg = "Symbolicator needs at least one symbol source"
            raise ValueError(msg)
        for source in sources:
            if not _is_url(source) and not Path(source).is_dir():
                msg = f"symbol source {source!r} is neither a folder nor an HTTP URL"
                raise ValueError(msg)
        if max_cached_modules < 1:
            msg = f"max_cached_modules must be at least 1, got {max_cached_modules}"
            raise ValueError(msg)
        if miss_ttl_seconds < 0:
            msg = f"miss_ttl_seconds must not be negative, got {miss_ttl_seconds}"
            raise ValueError(msg)

        self._sources = tuple(sources)
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._timeout_seconds = timeout_seconds
        self._max_cached = max_cached_modules
        self._lock = threading.Lock()
        self._miss_ttl_seconds = miss_ttl_seconds
        self._clock = clock
        self._symcaches: OrderedDict[tuple[str, str], Any] = OrderedDict()
        # When each missing symbol file may be looked for again.
        self._misses: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._session = requests.Session()

    def symbolicate(self, frames: Sequence[NativeFrame]) -> list[SymbolicatedFrame]:
        """Resolve each frame; unknown frames keep only module, id and offset.

        Args:
            frames: the frames, innermost first.

        Returns:
            One ``SymbolicatedFrame`` per frame, in the same order.
        """
        return [self._symbolicate_one(frame) for frame in frames]

    def close(self) -> None:
        """Release the HTTP connections and forget parsed files."""
        self._session.close()
        with self._lock:
            self._symcaches.clear()
            self._misses.clear()

    def _symbolicate_one(self, frame: NativeFrame) -> SymbolicatedFrame:
        unknown = SymbolicatedFrame(frame.module, frame.debug_id, frame.offset)
        if not _SAFE_DEBUG_FILE.match(frame.module) or frame.module in {".", ".."}:
            return unknown
        if frame.offset < 0:
            return unknown
        try:
            module_id = breakpad_id(frame.debug_id)
        except ValueError:
            return unknown

        symcache = self._symcache(frame.module, module_id)
        if symcache is None:
            return unknown
        locations = symcache.lookup(frame.offset)
        if not locations:
            return unknown

        # The first location is the innermost (inlined) function at the address.
        location = locations[0]
        return SymbolicatedFrame(
            module=frame.module,
            debug_id=frame.debug_id,
            offset=frame.offset,
            function=location.symbol or None,
            file=location.full_path or None,
            line=location.line or None,
        )

    def _symcache(self, debug_file: str, module_id: str) -> Any:
        key = (debug_file, module_id)
        with self._lock:
            if key in self._symcaches:
                self._symcaches.move_to_end(key)
                return self._symcaches[key]
            retry_at = self._misses.get(key)
            if retry_at is not None and self._clock() < retry_at:
                return None

        try:
            symcache = self._load(debug_file, module_id)
        except _SourceUnavailableError:
            return None  # not remembered: the server may answer next time

        with self._lock:
            if symcache is None:
                self._remember_miss(key)
                return None
            self._misses.pop(key, None)
            self._symcaches[key] = symcache
            self._symcaches.move_to_end(key)
            while len(self._symcaches) > self._max_cached:
                self._symcaches.popitem(last=False)
        return symcache

    def _remember_miss(self, key: tuple[str, str]) -> None:
        self._misses[key] = self._clock() + self._miss_ttl_seconds
        self._misses.move_to_end(key)
        while len(self._misses) > self._max_cached:
            self._misses.popitem(last=False)

    def _load(self, debug_file: str, module_id: str) -> Any:
        relative = f"{debug_file}/{module_id}/{_symbol_file_name(debug_file)}"
        unavailable = False
        for source in self._sources:
            try:
                data = self._fetch(source, relative)
            except _SourceUnavailableError:
                unavailable = True
                continue
            if data is None:
                continue
            try:
                archive = Archive.from_bytes(data)
                for obj in archive.iter_objects():
                    return obj.make_symcache()
            except SymbolicError as exc:
                _logger.warning(
                    "Symbol file %s from %s is invalid: %s", relative, source, exc
                )
        if unavailable:
            raise _SourceUnavailableError(relative)
        return None

    def _fetch(self, source: str, relative: str) -> bytes | None:
        if not _is_url(source):
            return _read_file(Path(source) / relative)

        cached = self._cache_dir / relative if self._cache_dir is not None else None
        if cached is not None and cached.is_file():
            return _read_file(cached)

        data = self._download(f"{source.rstrip('/')}/{relative}")
        if data is not None and cached is not None:
            _write_atomically(cached, data)
        return data

    def _download(self, url: str) -> bytes | None:
        try:
            with self._session.get(
                url, timeout=self._timeout_seconds, stream=True
            ) as response:
                if response.status_code == 404:
                    return None
                response.raise_for_status()
                parts: list[bytes] = []
                total = 0
                for chunk in response.iter_content(64 * 1024):
                    total += len(chunk)
                    if total > _MAX_SYMBOL_FILE_BYTES:
                        _logger.warning("Symbol file %s is too large; skipped", url)
                        return None
                    parts.append(chunk)
                return b"".join(parts)
        except requests.RequestException as exc:
            _logger.warning("Symbol server request %s failed: %s", url, exc)
            raise _SourceUnavailableError(url) from exc


class _SourceUnavailableError(Exception):
    """A symbol server could not be asked; the answer must not be cached."""


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _read_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        _logger.warning("Symbol file %s cannot be read: %s", path, exc)
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError as exc:
        _logger.warning("Symbol cache %s cannot be written: %s", path, exc)
