"""Tests for exporters.symbolication against hand-written Breakpad symbol files."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporters.symbolication import (
    NativeFrame,
    SymbolicatedFrame,
    Symbolicator,
    breakpad_id,
)

DEBUG_ID = "0123456789ABCDEF0123456789ABCDEF1"
DEBUG_GUID = "01234567-89ab-cdef-0123-456789abcdef-1"

# Breakpad text format, see
# https://chromium.googlesource.com/breakpad/breakpad/+/HEAD/docs/symbol_files.md
SYMBOL_FILE = f"""\
MODULE Linux x86_64 {DEBUG_ID} libdemo.so
INFO CODE_ID 6789ABCD0123
FILE 0 /src/demo/predict.c
FILE 1 /src/demo/features.c
FUNC 1000 40 0 predict_risk
1000 10 12 0
1010 20 14 0
1030 10 15 0
FUNC 1100 30 0 normalise_features
1100 30 40 1
PUBLIC 2000 0 exported_helper
"""


@pytest.fixture
def symbol_store(tmp_path: Path) -> Path:
    """A folder laid out as a Breakpad symbol store with one module."""
    store = tmp_path / "symbols"
    module_dir = store / "libdemo.so" / DEBUG_ID
    module_dir.mkdir(parents=True)
    (module_dir / "libdemo.so.sym").write_text(SYMBOL_FILE, encoding="ascii")
    return store


@pytest.fixture
def symbol_server(symbol_store: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP symbol server over the store: its URL and the paths asked."""
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requested.append(self.path)

    handler = functools.partial(Handler, directory=str(symbol_store))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_folder_store_resolves_function_file_and_line(symbol_store: Path) -> None:
    """An offset inside a FUNC resolves to its name, file and line record."""
    symbolicator = Symbolicator([str(symbol_store)])

    result = symbolicator.symbolicate([NativeFrame("libdemo.so", DEBUG_ID, 0x1015)])

    expected = [
        SymbolicatedFrame(
            "libdemo.so", DEBUG_ID, 0x1015, "predict_risk", "/src/demo/predict.c", 14
        )
    ]
    assert expected == result


def test_guid_form_debug_id_finds_the_same_module(symbol_store: Path) -> None:
    """A debug id given as GUID plus age maps to the Breakpad directory name."""
    symbolicator = Symbolicator([str(symbol_store)])

    result = symbolicator.symbolicate([NativeFrame("libdemo.so", DEBUG_GUID, 0x1105)])

    expected = ("normalise_features", "/src/demo/features.c", 40)
    assert expected == (result[0].function, result[0].file, result[0].line)


def test_public_symbol_resolves_without_file(symbol_store: Path) -> None:
    """A PUBLIC record gives a function name but no file or line."""
    symbolicator = Symbolicator([str(symbol_store)])

    result = symbolicator.symbolicate([NativeFrame("libdemo.so", DEBUG_ID, 0x2004)])

    expected = ("exported_helper", None, None)
    assert expected == (result[0].function, result[0].file, result[0].line)


@pytest.mark.parametrize(
    "frame",
    [
        NativeFrame("libother.so", DEBUG_ID, 0x1015),
        NativeFrame("libdemo.so", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF0", 0x1015),
        NativeFrame("libdemo.so", "not-a-debug-id", 0x1015),
        NativeFrame("../libdemo.so", DEBUG_ID, 0x1015),
        NativeFrame("libdemo.so", DEBUG_ID, 0x10),
    ],
    ids=["missing-module", "missing-id", "bad-id", "path-traversal", "before-code"],
)
def test_unresolvable_frame_comes_back_unknown(
    symbol_store: Path, frame: NativeFrame
) -> None:
    """Missing symbols give an unknown frame, never an error."""
    symbolicator = Symbolicator([str(symbol_store)])

    result = symbolicator.symbolicate([frame])

    expected = [SymbolicatedFrame(frame.module, frame.debug_id, frame.offset)]
    assert expected == result
    assert not result[0].resolved


def test_http_store_resolves_and_caches_on_disk(
    symbol_server: tuple[str, list[str]], tmp_path: Path
) -> None:
    """A loopback symbol server is asked once; the file is then read from the cache."""
    url, requested = symbol_server
    cache_dir = tmp_path / "cache"
    frames = [
        NativeFrame("libdemo.so", DEBUG_ID, 0x1035),
        NativeFrame("libdemo.so", DEBUG_ID, 0x1000),
    ]

    first = Symbolicator([url], cache_dir=cache_dir).symbolicate(frames)
    second = Symbolicator([url], cache_dir=cache_dir).symbolicate(frames)

    expected = [("predict_risk", 15), ("predict_risk", 12)]
    assert expected == [(frame.function, frame.line) for frame in first]
    assert first == second
    assert [f"/libdemo.so/{DEBUG_ID}/libdemo.so.sym"] == requested
    assert (cache_dir / "libdemo.so" / DEBUG_ID / "libdemo.so.sym").is_file()


def test_http_store_missing_module_is_unknown(
    symbol_server: tuple[str, list[str]],
) -> None:
    """A 404 from the symbol server gives an unknown frame."""
    url, _ = symbol_server
    frame = NativeFrame("libmissing.so", DEBUG_ID, 0x1000)

    result = Symbolicator([url]).symbolicate([frame])

    expected = [SymbolicatedFrame("libmissing.so", DEBUG_ID, 0x1000)]
    assert expected == result


def test_later_source_is_tried_when_the_first_lacks_the_module(
    symbol_store: Path, tmp_path: Path
) -> None:
    """Sources are searched in order until one has the module."""
    empty = tmp_path / "empty"
    empty.mkdir()
    symbolicator = Symbolicator([str(empty), str(symbol_store)])

    result = symbolicator.symbolicate([NativeFrame("libdemo.so", DEBUG_ID, 0x1000)])

    expected = "predict_risk"
    assert expected == result[0].function


def test_breakpad_id_of_guid_with_age() -> None:
    """A GUID with age becomes 32 upper-case hex digits followed by the age."""
    result = breakpad_id("01234567-89ab-cdef-0123-456789abcdef-1a")

    expected = "0123456789ABCDEF0123456789ABCDEF1A"
    assert expected == result


def test_source_that_is_neither_folder_nor_url_is_refused(tmp_path: Path) -> None:
    """A misspelt source fails at construction."""
    with pytest.raises(ValueError, match="neither a folder nor an HTTP URL"):
        Symbolicator([str(tmp_path / "nope")])


def test_unreachable_server_is_retried_on_the_next_lookup(symbol_store: Path) -> None:
    """An unreachable server gives unknown frames but is not remembered as a miss."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=str(symbol_store)
        ),
    )
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    server.server_close()  # the port is known but nothing listens yet
    symbolicator = Symbolicator([url], timeout_seconds=2.0)
    frame = NativeFrame("libdemo.so", DEBUG_ID, 0x1000)

    before = symbolicator.symbolicate([frame])
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/"))),
        functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=str(symbol_store)
        ),
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        after = symbolicator.symbolicate([frame])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    expected = (None, "predict_risk")
    assert expected == (before[0].function, after[0].function)


class ManualClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_missing_symbols_uploaded_later_are_found_after_the_miss_ttl(
    symbol_server: tuple[str, list[str]], symbol_store: Path
) -> None:
    """A 404 is remembered for the miss TTL only; then the uploaded file is found."""
    url, requested = symbol_server
    later_id = "FEDCBA9876543210FEDCBA98765432100"
    clock = ManualClock()
    symbolicator = Symbolicator([url], miss_ttl_seconds=300.0, clock=clock)
    frame = NativeFrame("libdemo.so", later_id, 0x1000)

    before_upload = symbolicator.symbolicate([frame])[0].function
    asked_before_upload = len(requested)
    module_dir = symbol_store / "libdemo.so" / later_id
    module_dir.mkdir(parents=True)
    (module_dir / "libdemo.so.sym").write_text(
        SYMBOL_FILE.replace(DEBUG_ID, later_id), encoding="ascii"
    )
    clock.now = 299.0
    within_ttl = symbolicator.symbolicate([frame])[0].function
    asked_within_ttl = len(requested) - asked_before_upload
    clock.now = 301.0
    after_ttl = symbolicator.symbolicate([frame])[0].function

    result = (before_upload, within_ttl, asked_within_ttl, after_ttl)

    expected = (None, None, 0, "predict_risk")
    assert expected == result


def test_negative_miss_ttl_is_refused(symbol_store: Path) -> None:
    """A negative miss TTL fails at construction."""
    with pytest.raises(ValueError, match="miss_ttl_seconds"):
        Symbolicator([str(symbol_store)], miss_ttl_seconds=-1.0)
