"""Remove patient data from telemetry values before they leave the process.

Scrubbing by key alone misses what matters most: exception messages, stack
text, URLs and log bodies carry identifiers in free text. ``Scrubber`` finds
them by value (the catalogue in ``otel_processors.phi_patterns``) and replaces
each with a marker naming its kind, keeping the context words::

    >>> Scrubber().scrub("lookup failed for patient John Smith, SSN 123-45-6789")
    'lookup failed for patient [REDACTED:NAME], SSN [REDACTED:SSN]'

Values under sensitive keys (``password``, ``patient_name``,
``http.request.header.authorization``, ...) are replaced whole; values under
allow-listed keys (``exception.type``, ``code.*``, ``healthai.*``, ...) are
never touched. The scrubber never raises: a failure is recorded through
``otel_processors._guard`` and the value is replaced by ``[REDACTED:ERROR]``,
so a bug fails closed rather than leaking. See docs/scrubbing.md.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from opentelemetry.util.types import AnyValue

from otel_processors._guard import record_failure
from otel_processors.errors import ConfigurationError
from otel_processors.phi_patterns import (
    BUILTIN_ALLOW_KEYS,
    BUILTIN_REDACT_KEYS,
    CATALOGUE,
    KEY_SUFFIXES,
    NAME_CONTEXT_WORDS,
    WHOLE_NAME,
    PhiPattern,
    skeleton,
)
from otel_processors.yaml_files import read_yaml

__all__ = ["PATTERNS_ENV", "Scrubber", "marker"]

_logger = logging.getLogger(__name__)

PATTERNS_ENV: Final = "HEALTHAI_SCRUB_PATTERNS"
"""Environment variable naming the YAML file read by ``Scrubber.from_env``."""

# Replacing can bring two fragments together into a new match; a few passes
# reach the fixed point that makes scrubbing idempotent.
_MAX_PASSES: Final = 3
# Long texts are gated in blocks of about this many characters (whole lines).
_BLOCK_CHARS: Final = 1024
_MAX_DEPTH: Final = 32
_KEY_CACHE_SIZE: Final = 4096
_CLEAN_CACHE_SIZE: Final = 4096
_CLEAN_CACHE_MAX_CHARS: Final = 256
_KIND_RE: Final = re.compile(r"[A-Z][A-Z0-9_]{0,31}")

# Semantic-convention keys whose last segment looks sensitive ("address") but
# which name hosts and sockets: their values are scrubbed, not redacted whole.
_VALUE_SCRUBBED_KEYS: Final = frozenset(
    {
        "server.address",
        "client.address",
        "source.address",
        "destination.address",
        "network.peer.address",
        "network.local.address",
        "net.peer.name",
        "net.host.name",
    }
)
# Header keys handled by their own catalogue patterns in free text.
_TEXT_KEYS_HANDLED_ELSEWHERE: Final = frozenset(
    {"authorization", "proxy_authorization", "bearer", "cookie", "set_cookie"}
)
_IP_OR_PORT_RE: Final = re.compile(r"[\d.:\[\]a-fA-F]+")
_DIGIT_GROUPS_RE: Final = re.compile(r"(?:,?[ \t]+\d{1,6}(?![\w.:]))*")
_ALLOWED: Final = ""
_WORD_START: Final = "[^A-Za-z0-9]"
_MARKER_RE: Final = re.compile(r"\[REDACTED:[A-Z0-9_]{1,32}\]")
# Stands between the words of a key in a trie; matches one optional separator.
_PART_BREAK: Final = "\x00"


def marker(kind: str) -> str:
    """Return the replacement text for one identifier of ``kind``.

    Args:
        kind: an upper-case kind such as ``SSN``.

    Returns:
        ``[REDACTED:<kind>]``.
    """
    return f"[REDACTED:{kind}]"


def _normalise_key(key: str) -> str:
    return re.sub(r"[-_. ]", "", key.lower())


# Keys whose values stand where a name context word's would in text, by their
# normalised form, with the word to scrub them after.
_NAME_CONTEXT_KEYS: Final = {
    _normalise_key(word): word for word in (*NAME_CONTEXT_WORDS, "name", "names")
}
_WHOLE_NAME_RE: Final = re.compile(WHOLE_NAME)


@functools.lru_cache(maxsize=_KEY_CACHE_SIZE)
def _name_context(key: str) -> str | None:
    return _NAME_CONTEXT_KEYS.get(_normalise_key(key))


def _key_text_regex(keys: Iterable[str]) -> str:
    """Alternation matching each key as written in text: snake, camel, dotted."""
    spellings = {
        _PART_BREAK.join(part for part in re.split(r"[-_. ]+", key.lower()) if part)
        for key in keys
    }
    return _trie_regex(sorted(spelling for spelling in spellings if spelling))


class Scrubber:
    """Find and replace patient data in strings, values and attribute maps.

    A scrubber is immutable after construction and safe to share between
    threads; ``stats`` counts replacements by kind.

    Args:
        extra_patterns: kind name → regular expression; each match (or its
            ``v`` group, when the pattern has one) becomes ``[REDACTED:KIND]``.
            User patterns run after the built-in ones.
        allow_keys: keys whose values are never touched; ``prefix.*`` names a
            family. They win over the built-in redaction keys.
        redact_keys: keys whose values are replaced whole by
            ``[REDACTED:KEY]``; they win over every allow-list.

    Raises:
        ConfigurationError: a kind name is not upper-case letters, digits and
            ``_``, or a pattern does not compile or matches the empty string.
    """

    def __init__(
        self,
        *,
        extra_patterns: Mapping[str, str] | None = None,
        allow_keys: Iterable[str] = (),
        redact_keys: Iterable[str] = (),
    ) -> None:
        user_patterns = [
            _compile_user_pattern(kind, regex)
            for kind, regex in (extra_patterns or {}).items()
        ]
        redact_keys = list(redact_keys)
        self._key_pattern = self._text_key_pattern(redact_keys)
        self._builtin = _GatedPatterns(
            (
                *self._patterns_before_keys(),
                self._key_pattern,
                *self._patterns_after_keys(),
            )
        )
        self._user = _GatedPatterns(user_patterns)
        self._has_user_patterns = bool(user_patterns)

        user_allow = [key.lower() for key in allow_keys]
        self._user_redact = frozenset(_normalise_key(key) for key in redact_keys)
        self._user_allow = _KeySet(user_allow)
        self._builtin_allow = _KeySet(key.lower() for key in BUILTIN_ALLOW_KEYS)
        self._builtin_redact = {
            _normalise_key(key): kind for key, kind in BUILTIN_REDACT_KEYS.items()
        }

        self._decisions: dict[str, str | None] = {}
        self._clean: dict[str, None] = {}
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        _logger.debug(
            "Scrubber ready: %d built-in and %d extra patterns, %d allow and "
            "%d redact keys added",
            len(CATALOGUE),
            len(user_patterns),
            len(user_allow),
            len(redact_keys),
        )

    @classmethod
    def from_env(cls) -> Scrubber:
        """Build a scrubber configured by the file ``HEALTHAI_SCRUB_PATTERNS`` names.

        The file is YAML: ``{patterns: {KIND: regex}, allow_keys: [...],
        redact_keys: [...]}``, every section optional. Without the variable the
        built-in configuration is used.

        Returns:
            The configured scrubber.

        Raises:
            ConfigurationError: the file cannot be read or parsed, or a key
                holds a value of the wrong type; the message names the file
                and the key.
        """
        path = os.environ.get(PATTERNS_ENV, "").strip()
        if not path:
            return cls()
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Scrubber:
        """Build a scrubber from a patterns file (the format of ``from_env``).

        Args:
            path: the YAML file.

        Returns:
            The configured scrubber.

        Raises:
            ConfigurationError: see ``from_env``.
        """
        config = _load_config(os.fspath(path))
        try:
            return cls(
                extra_patterns=config["patterns"],
                allow_keys=config["allow_keys"],
                redact_keys=config["redact_keys"],
            )
        except ConfigurationError as exc:
            msg = f"{os.fspath(path)}: key 'patterns': {exc}"
            raise ConfigurationError(msg) from exc

    def scrub(self, text: str) -> str:
        """Return ``text`` with every identifier found replaced by its marker.

        Args:
            text: any string, including lone surrogates and NUL characters.

        Returns:
            The scrubbed text; ``[REDACTED:ERROR]`` if scrubbing itself failed.
        """
        try:
            return self._scrub_text(text)
        except Exception as exc:
            record_failure("scrubber.scrub", exc)
            return marker("ERROR")

    def scrub_value(self, value: AnyValue, key: str | None = None) -> AnyValue:
        """Scrub one OpenTelemetry value, by its key first, then by its content.

        Strings are scrubbed as text; ``bytes`` are decoded as UTF-8 (invalid
        bytes become U+FFFD), scrubbed, and returned unchanged when clean or
        re-encoded when something was replaced; numbers and booleans are kept
        unless their key is sensitive; sequences and mappings are scrubbed
        element by element (a mapping's keys apply to their values).

        Args:
            value: an ``AnyValue``: str, bool, int, float, bytes, a sequence
                or a mapping of them, or None.
            key: the attribute or field key the value sits under, if any.

        Returns:
            The value, of the same type unless a sensitive key turned it into
            its marker string.
        """
        try:
            result: AnyValue = self._scrub_any(value, key, 0)
        except Exception as exc:
            record_failure("scrubber.scrub_value", exc)
            return marker("ERROR")
        return result

    def scrub_attributes(
        self, attributes: Mapping[str, AnyValue]
    ) -> dict[str, AnyValue]:
        """Return a scrubbed copy of an attribute map (the input is not changed).

        Args:
            attributes: span, event, log record or resource attributes.

        Returns:
            A new dict with the same keys and scrubbed values.
        """
        try:
            return {
                key: self.scrub_value(value, key) for key, value in attributes.items()
            }
        except Exception as exc:
            record_failure("scrubber.scrub_attributes", exc)
            return {}

    def redacts_key(self, key: str) -> bool:
        """Return whether values under ``key`` are replaced whole.

        Args:
            key: an attribute or field key, e.g. ``http.request.header.cookie``.

        Returns:
            True when the key is sensitive and not allow-listed.
        """
        return bool(self._decide(key))

    def stats(self) -> Mapping[str, int]:
        """Return the number of replacements by kind since creation."""
        with self._lock:
            return dict(self._counts)

    # Text.

    def _scrub_text(self, text: str) -> str:
        if not text:
            return text
        short = len(text) <= _CLEAN_CACHE_MAX_CHARS
        if short and text in self._clean:
            return text

        original = text
        counts: dict[str, int] = {}
        if not short and "\n" in text:
            text = self._scrub_blocks(text, counts)
        else:
            text = self._scrub_unit(text, self._builtin, counts)
        if self._has_user_patterns:
            text = self._scrub_unit(text, self._user, counts)

        if counts:
            with self._lock:
                self._counts.update(counts)
        elif short:
            self._remember_clean(original)
        return text

    def _remember_clean(self, text: str) -> None:
        # Attribute values repeat (methods, routes, hosts, model names); only
        # texts found clean are kept, so no patient data lingers here.
        if len(self._clean) >= _CLEAN_CACHE_SIZE:
            self._clean.clear()
        self._clean[text] = None

    def _scrub_blocks(self, text: str, counts: dict[str, int]) -> str:
        """Scrub a long text block by block, line by line where a gate opens.

        No built-in pattern crosses a newline, so a block whose gates are all
        closed is clean as it stands, and a dirty block only costs patterns
        on the lines that need them.
        """
        parts: list[str] = []
        start, length = 0, len(text)
        while start < length:
            end = text.find("\n", start + _BLOCK_CHARS)
            end = length if end < 0 else end + 1
            block = text[start:end]
            start = end

            lines = block.split("\n")
            clean = self._clean
            known = sum(line in clean for line in lines)
            if known == len(lines):
                parts.append(block)
                continue
            if known == 0 and not self._builtin.active(block):
                # No gate opens on the block, so none opens on any of its lines.
                for line in lines:
                    if len(line) <= _CLEAN_CACHE_MAX_CHARS:
                        self._remember_clean(line)
                parts.append(block)
                continue
            parts.append("\n".join(self._scrub_line(line, counts) for line in lines))
        return "".join(parts)

    def _scrub_line(self, line: str, counts: dict[str, int]) -> str:
        # Stack text repeats line for line between occurrences of a bug: only
        # the lines not seen clean before cost patterns.
        if line in self._clean:
            return line
        scrubbed = self._scrub_unit(line, self._builtin, counts)
        if scrubbed == line and len(line) <= _CLEAN_CACHE_MAX_CHARS:
            self._remember_clean(line)
        return scrubbed

    def _scrub_unit(
        self, text: str, patterns: _GatedPatterns, counts: dict[str, int]
    ) -> str:
        for _ in range(_MAX_PASSES):
            active = patterns.active(text)
            if not active:
                break

            replaced = False
            for pattern in active:
                callback: Callable[[re.Match[str]], str]
                if pattern is self._key_pattern:
                    callback = functools.partial(
                        self._key_value_replacement, counts=counts
                    )
                else:
                    callback = _Replacer(pattern, counts)
                scrubbed, count = pattern.regex.subn(callback, text)
                # A rejected match (a Luhn-invalid number) counts but changes
                # nothing; only a real change calls for another pass.
                if count and scrubbed != text:
                    text, replaced = scrubbed, True
            if not replaced:
                break
        return text

    # Values.

    def _scrub_any(
        self, value: Any, key: str | None, depth: int, context: str | None = None
    ) -> Any:
        decision = self._decide(key) if key is not None else None
        if decision == _ALLOWED:
            return value
        if decision:
            return self._redact_whole(value, decision)
        if isinstance(value, str):
            if context is not None:
                return self._scrub_name_part(value, context)
            word = _name_context(key) if key else None
            if word is not None:
                return self._scrub_after(value, word)
            return self._scrub_text(value)
        if context is None and key:
            context = _name_context(key)
        return self._scrub_content(value, depth, context)

    def _scrub_content(self, value: Any, depth: int, context: str | None) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return self._scrub_text(value)
        if depth >= _MAX_DEPTH:
            self._count("NESTED")
            return marker("NESTED")
        if isinstance(value, (bytes, bytearray)):
            return self._scrub_bytes(bytes(value))
        if isinstance(value, Mapping):
            return self._scrub_mapping(value, depth, context)
        if isinstance(value, Sequence):
            items = [self._scrub_any(item, None, depth + 1, context) for item in value]
            return tuple(items) if isinstance(value, tuple) else items
        return self._scrub_text(str(value))

    def _scrub_mapping(
        self, value: Mapping[Any, Any], depth: int, context: str | None
    ) -> dict[str, Any]:
        # The parts of a structured name ({"family": "Smith", "given": [...]},
        # as FHIR writes it) are names too; other containers pass no context.
        inner = context if context == "name" else None
        result: dict[str, Any] = {}
        for k, v in value.items():
            key = str(k)
            scrubbed_key = self._scrub_text(key)
            if scrubbed_key != key:
                # Keys are data too ({"jdoe@mail.com": 0.8}); two keys that
                # scrub alike are told apart rather than merged.
                base, number = scrubbed_key, 1
                while scrubbed_key in result:
                    number += 1
                    scrubbed_key = f"{base}#{number}"
            result[scrubbed_key] = self._scrub_any(v, key, depth + 1, inner)
        return result

    def _scrub_after(self, value: str, word: str) -> str:
        """Scrub a value held under a key such as ``patient`` or ``name``.

        The key plays the part of the context word a log line would have: the
        value is scrubbed as if it followed the word, so ``{"patient": "Mary
        Jones"}`` loses the name as ``patient: Mary Jones`` does.
        """
        prefix = f"{word}: "
        scrubbed = self._scrub_text(prefix + value)
        if scrubbed.startswith(prefix):
            return scrubbed[len(prefix) :]
        return self._scrub_text(value)

    def _scrub_name_part(self, value: str, word: str) -> str:
        """Scrub a string inside a container held under a name context key.

        A string that is a name on its own (``"Smith"`` in ``{"name":
        [{"family": "Smith", "given": ["John"]}]}``) is redacted whole.
        """
        if _WHOLE_NAME_RE.fullmatch(value):
            self._count("NAME")
            return marker("NAME")
        return self._scrub_after(value, word)

    def _scrub_bytes(self, value: bytes) -> bytes:
        text = value.decode("utf-8", errors="replace")
        scrubbed = self._scrub_text(text)
        if scrubbed == text:
            return value
        return scrubbed.encode("utf-8", errors="surrogatepass")

    def _redact_whole(self, value: Any, kind: str) -> Any:
        if value is None:
            return None
        self._count(kind)
        if isinstance(value, (list, tuple)):
            return [marker(kind)] * len(value)
        return marker(kind)

    def _count(self, kind: str) -> None:
        with self._lock:
            self._counts[kind] += 1

    # Keys.

    def _decide(self, key: str) -> str | None:
        """Return "" to keep the value, a kind to redact it, None to scrub it."""
        try:
            return self._decisions[key]
        except KeyError:
            pass

        decision = self._decide_uncached(key)
        # A racing thread may clear the cache meanwhile: harmless, it refills.
        if len(self._decisions) >= _KEY_CACHE_SIZE:
            self._decisions.clear()
        self._decisions[key] = decision
        return decision

    def _decide_uncached(self, key: str) -> str | None:
        lowered = key.lower()
        last = lowered.rsplit(".", 1)[-1]
        whole, tail = _normalise_key(lowered), _normalise_key(last)

        if whole in self._user_redact or tail in self._user_redact:
            return "KEY"
        if lowered in self._user_allow or lowered in self._builtin_allow:
            return _ALLOWED
        if lowered in _VALUE_SCRUBBED_KEYS:
            return None

        kind = self._builtin_redact.get(whole) or self._builtin_redact.get(tail)
        if kind is not None:
            return kind
        for suffix, suffix_kind in KEY_SUFFIXES.items():
            if tail.endswith(suffix):
                return suffix_kind
        return None

    # Pattern set.

    @staticmethod
    def _patterns_before_keys() -> tuple[PhiPattern, ...]:
        return tuple(p for p in CATALOGUE if p.kind in {"CREDENTIALS", "TOKEN"})

    @staticmethod
    def _patterns_after_keys() -> tuple[PhiPattern, ...]:
        return tuple(p for p in CATALOGUE if p.kind not in {"CREDENTIALS", "TOKEN"})

    def _text_key_pattern(self, redact_keys: Iterable[str]) -> PhiPattern:
        """The pattern for ``key=value`` and ``"key": "value"`` in free text."""
        builtin = {
            key: kind
            for key, kind in BUILTIN_REDACT_KEYS.items()
            if key not in _TEXT_KEYS_HANDLED_ELSEWHERE
        }
        user = [key for key in redact_keys if key.strip()]
        self._text_kinds = {_normalise_key(key): kind for key, kind in builtin.items()}
        self._text_kinds.update({_normalise_key(key): "KEY" for key in user})

        alternation = _key_text_regex([*builtin, *user])
        regex = re.compile(
            rf"(?<![A-Za-z0-9])(?P<k>(?i:{alternation}))(?![A-Za-z0-9])"
            r"""["']?[ \t]{0,3}[:=][ \t]{0,3}"""
            r"""(?:"(?P<dq>[^"\r\n]{1,512})"|'(?P<sq>[^'\r\n]{1,512})'"""
            r"""|(?P<u>[^\s,;&"'<>{}\[\]()]{1,512})"""
            r"""(?P<c>(?:,?[ \t]+(?![\w.-]{1,64}[=:])(?:[A-Z][\w'’.-]{0,40}"""
            r"""|\d{1,6}(?![\w.:])|[A-Z]\.)){0,6}))"""
        )
        words: set[str] = set()
        for key in [*builtin, *user]:
            words |= _gate_words(key)
        return PhiPattern("KEY", regex, tuple(sorted(words)))

    def _key_value_replacement(
        self, match: re.Match[str], *, counts: dict[str, int]
    ) -> str:
        kind = self._text_kinds.get(_normalise_key(match["k"]), "KEY")
        start, end = match.span()
        for group in ("dq", "sq"):
            if match[group] is not None:
                return _replace_span(match, group, kind, counts)

        if kind == "ADDRESS" and _IP_OR_PORT_RE.fullmatch(match["u"]):
            return match.string[start:end]
        if kind in {"CREDENTIALS", "TOKEN"}:
            return _replace_span(match, "u", kind, counts)

        # Names, addresses and dates run over several words, numbers over
        # several digit groups ("phone: 555 123 4567"); other words stay.
        counts[kind] = counts.get(kind, 0) + 1
        rest = match["c"]
        if kind not in {"NAME", "ADDRESS", "DOB"}:
            digits = _DIGIT_GROUPS_RE.match(rest)
            rest = rest[digits.end() :] if digits else rest
        else:
            rest = ""
        return match.string[start : match.start("u")] + marker(kind) + rest


class _GatedPatterns:
    """Patterns with their gates, to choose cheaply the ones worth running."""

    def __init__(self, patterns: Iterable[PhiPattern]) -> None:
        self._patterns = tuple(patterns)
        words = sorted({w for p in self._patterns for w in p.gate})
        shapes = list(dict.fromkeys(s for p in self._patterns for s in p.shape))
        bits = {word: 1 << i for i, word in enumerate(words)}
        # One search finds the gate words; a word found also opens the gates
        # of the words it contains ("telephone" opens "phone").
        self._found_bits = {
            word: sum(bits[inner] for inner in words if inner in word) for word in words
        }
        # Context words start after a non-alphanumeric character (every
        # context pattern requires it): looking only there is twice as fast.
        self._lower_re = _alternation(
            [w for w in words if w == w.lower() and w[0].isalpha()], _WORD_START
        )
        self._cased_re = _initial_alternation(
            [w for w in words if w != w.lower() and w[0].isalpha()]
        )
        self._anywhere = [(w, bits[w]) for w in words if not w[0].isalpha()]
        offset = len(words)
        self._literal_shapes = [
            (shape, 1 << (offset + i))
            for i, shape in enumerate(shapes)
            if isinstance(shape, str)
        ]
        self._pattern_shapes = [
            (shape.search, 1 << (offset + i))
            for i, shape in enumerate(shapes)
            if not isinstance(shape, str)
        ]
        self._masks = [
            (
                pattern,
                sum(1 << words.index(w) for w in set(pattern.gate)),
                sum(1 << (offset + shapes.index(s)) for s in set(pattern.shape)),
            )
            for pattern in self._patterns
        ]
        self._ungated = tuple(
            pattern for pattern, gate, shape in self._masks if not gate and not shape
        )
        self._ungated_positions = tuple(
            p
            for p, (_, gate, shape) in enumerate(self._masks)
            if not gate and not shape
        )
        # For each gate bit, the positions of the patterns it may open.
        self._opened_by: dict[int, tuple[int, ...]] = {}
        for position, (_, gate, shape) in enumerate(self._masks):
            for bit in _bits(gate | shape):
                self._opened_by[bit] = (*self._opened_by.get(bit, ()), position)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def active(self, text: str) -> list[PhiPattern]:
        """Return the patterns whose gates are open for ``text``, in order."""
        if "[REDACTED:" in text:
            # Kinds in markers ("[REDACTED:PHONE]") are not context words.
            text = _MARKER_RE.sub("\x00", text)
        present = 0
        found_bits = self._found_bits
        if self._lower_re is not None:
            for word in set(self._lower_re.findall("\x00" + text.lower())):
                present |= found_bits[word]
        if self._cased_re is not None:
            for word in set(self._cased_re.findall("\x00" + text)):
                present |= found_bits[word]
        for word, bit in self._anywhere:
            if word in text:
                present |= bit
        if self._literal_shapes or self._pattern_shapes:
            shape_of_text = skeleton(text)
            for literal, bit in self._literal_shapes:
                if literal in shape_of_text:
                    present |= bit
            for search, bit in self._pattern_shapes:
                if search(shape_of_text) is not None:
                    present |= bit

        if not present:
            return list(self._ungated)
        positions = {p for bit in _bits(present) for p in self._opened_by[bit]}
        positions.update(self._ungated_positions)
        masks = self._masks
        return [
            masks[p][0]
            for p in sorted(positions)
            if (not masks[p][1] or masks[p][1] & present)
            and (not masks[p][2] or masks[p][2] & present)
        ]


def _bits(value: int) -> Iterator[int]:
    """Yield the set bits of ``value``, lowest first."""
    while value:
        low = value & -value
        yield low
        value ^= low


def _gate_words(key: str) -> set[str]:
    """Literals one of which occurs wherever ``key`` is written in text.

    ``api_key`` may be written apiKey, api-key or "api key": each contains
    one of ``apikey``, ``api_key``, ``api-key``, ``api.key``, ``api key``.
    """
    parts = [part for part in re.split(r"[-_. ]+", key.lower()) if part]
    if len(parts) < 2:
        return {key.lower()}
    return {f"{parts[0]}{sep}{parts[1]}" for sep in ("", "_", "-", ".", " ")}


def _alternation(words: list[str], before: str) -> re.Pattern[str] | None:
    """Find ``words`` after ``before``; the lookahead lets found words overlap."""
    if not words:
        return None
    return re.compile(f"{before}(?=({_trie_regex(sorted(set(words)))}))")


def _initial_alternation(words: list[str]) -> re.Pattern[str] | None:
    """Find ``words`` at word starts, trying only where one of their initials is.

    For a few words with rare initials ("Mr", "Dr", "Prof") this skips most of
    the text, where ``_alternation`` stops at every separator.
    """
    if not words:
        return None
    initials = sorted({word[0] for word in words})
    branches = "|".join(
        f"(?<={re.escape(initial)})"
        + _trie_regex(sorted({w[1:] for w in words if w[0] == initial}))
        for initial in initials
    )
    charset = "".join(re.escape(initial) for initial in initials)
    return re.compile(f"([{charset}](?<![A-Za-z0-9].)(?:{branches}))")


def _trie_regex(words: list[str]) -> str:
    """Return a regex matching any of ``words``, factored by common prefixes.

    A flat alternation of hundreds of words tries every branch at every
    position; the factored form tries one character per level. Longer words
    come first at each level, so the longest word found at a position wins.
    """
    by_first: dict[str, list[str]] = {}
    ends_here = False
    for word in words:
        if word:
            by_first.setdefault(word[0], []).append(word[1:])
        else:
            ends_here = True

    branches = [
        (r"[ _.-]?" if first == _PART_BREAK else re.escape(first)) + _trie_regex(rests)
        for first, rests in by_first.items()
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if ends_here else body


class _KeySet:
    """Exact keys and ``prefix.*`` families, compared in lower case."""

    def __init__(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        self._exact = frozenset(k for k in keys if not k.endswith(".*"))
        self._prefixes = tuple(k[:-1] for k in keys if k.endswith(".*"))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        return key in self._exact or key.startswith(self._prefixes)


class _Replacer:
    """The ``re.sub`` callback for one pattern: validates, marks and counts."""

    __slots__ = ("_counts", "_pattern")

    def __init__(self, pattern: PhiPattern, counts: dict[str, int]) -> None:
        self._pattern = pattern
        self._counts = counts

    def __call__(self, match: re.Match[str]) -> str:
        pattern = self._pattern
        # A ``v`` group that took no part in this match (an alternative
        # without it) leaves the whole match to replace.
        group = "v" if "v" in match.re.groupindex and match.start("v") >= 0 else 0
        if pattern.validate is not None and not pattern.validate(match[group]):
            return match[0]
        if pattern.locate is None:
            return _replace_span(match, group, pattern.kind, self._counts)

        span = pattern.locate(match[group])
        if span is None:
            return match[0]
        text, offset = match.string, match.start(group)
        start, end = offset + span[0], offset + span[1]
        self._counts[pattern.kind] = self._counts.get(pattern.kind, 0) + 1
        return (
            text[match.start() : start] + marker(pattern.kind) + text[end : match.end()]
        )


def _replace_span(
    match: re.Match[str], group: str | int, kind: str, counts: dict[str, int]
) -> str:
    counts[kind] = counts.get(kind, 0) + 1
    start, end = match.span()
    text = match.string
    return (
        text[start : match.start(group)] + marker(kind) + text[match.end(group) : end]
    )


def _compile_user_pattern(kind: str, regex: str) -> PhiPattern:
    if not isinstance(kind, str) or not _KIND_RE.fullmatch(kind):
        msg = (
            f"pattern kind {kind!r} must be upper-case letters, digits and '_' "
            "(it is written as [REDACTED:KIND])"
        )
        raise ConfigurationError(msg)
    if not isinstance(regex, str):
        msg = f"pattern {kind}: {regex!r} is not a string"
        raise ConfigurationError(msg)
    try:
        compiled = re.compile(regex)
    except (re.error, OverflowError, RecursionError) as exc:
        msg = f"pattern {kind}: {regex!r} is not a valid regular expression: {exc}"
        raise ConfigurationError(msg) from exc
    if compiled.fullmatch(""):
        msg = f"pattern {kind}: {regex!r} matches the empty string"
        raise ConfigurationError(msg)
    return PhiPattern(kind, compiled)


def _load_config(path: str) -> dict[str, Any]:
    raw = read_yaml(path, what="the scrub patterns file")

    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        msg = f"{path}: expected a mapping at the top level, got {type(raw).__name__}"
        raise ConfigurationError(msg)
    unknown = sorted(set(raw) - {"patterns", "allow_keys", "redact_keys"})
    if unknown:
        msg = (
            f"{path}: unknown key {unknown[0]!r} "
            "(expected patterns, allow_keys, redact_keys)"
        )
        raise ConfigurationError(msg)

    patterns = raw.get("patterns") or {}
    if not isinstance(patterns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in patterns.items()
    ):
        msg = (
            f"{path}: key 'patterns' must map kind names to regex strings, "
            f"got {patterns!r}"
        )
        raise ConfigurationError(msg)

    config: dict[str, Any] = {"patterns": patterns}
    for name in ("allow_keys", "redact_keys"):
        keys = raw.get(name) or []
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            msg = f"{path}: key {name!r} must be a list of strings, got {keys!r}"
            raise ConfigurationError(msg)
        config[name] = keys
    return config
