"""The catalogue of patient-data patterns the scrubber looks for in values.

Each ``PhiPattern`` finds one kind of identifier and names the part to replace
(the ``v`` group); context words around it stay, so ``patient John Smith``
becomes ``patient [REDACTED:NAME]``. Patterns run in catalogue order: URL
credentials and tokens first (their values may look like anything), then
context patterns, then identifiers found by shape alone.

Every pattern is written for Python's backtracking engine with bounded
repetitions and no nested ambiguous quantifiers, so each one runs in time
linear in the input. A leading digit guard, ``(?<![\\w.:/-])``, keeps a number
from being picked out of a version, path, port, trace id or hex digest.

The choices (what is deliberately *not* matched, and why) are explained in
docs/scrubbing.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "BUILTIN_ALLOW_KEYS",
    "BUILTIN_REDACT_KEYS",
    "CATALOGUE",
    "KEY_SUFFIXES",
    "NAME_CONTEXT_WORDS",
    "WHOLE_NAME",
    "PhiPattern",
    "luhn_valid",
    "npi_valid",
    "skeleton",
]


@dataclass(frozen=True)
class PhiPattern:
    """One kind of identifier, found by a regular expression.

    Attributes:
        kind: the name written in ``[REDACTED:KIND]``.
        regex: the compiled pattern; its ``v`` group (or the whole match when
            there is no such group) is what gets replaced.
        gate: lower-case literals, one of which must occur in the lower-cased
            text for the pattern to be tried at all (a cheap filter for clean
            text); empty tries always. A literal with upper-case letters
            is looked for in the text as it is.
        shape: literals or patterns, one of which must occur in the text's
            skeleton (see ``skeleton``), the filter for identifiers found by
            their shape; empty tries always.
        locate: finds the identifier inside the ``v`` text, returning its
            span there or None; what lies around it is kept.
        validate: a check on the ``v`` text; when it returns False the match
            is left as it is (e.g. a Luhn-invalid digit run).
    """

    kind: str
    regex: re.Pattern[str]
    gate: tuple[str, ...] = ()
    shape: tuple[str | re.Pattern[str], ...] = ()
    validate: Callable[[str], bool] | None = None
    locate: Callable[[str], tuple[int, int] | None] | None = None


def luhn_valid(digits: str) -> bool:
    """Return whether a digit string passes the Luhn (mod 10) check.

    Args:
        digits: decimal digits only.

    Returns:
        True when the weighted digit sum is a multiple of 10 (ISO/IEC 7812-1).
    """
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def npi_valid(digits: str) -> bool:
    """Return whether ten digits form a valid National Provider Identifier.

    The NPI check digit is the Luhn digit of the number prefixed with the
    card issuer prefix 80840 (CMS, "Requirements for the NPI check digit").

    Args:
        digits: any string; only ten decimal digits can pass.

    Returns:
        True for a ten-digit NPI with a correct check digit.
    """
    if len(digits) != 10 or not digits.isdigit():
        return False
    return luhn_valid("80840" + digits)


def _locate_card(text: str) -> tuple[int, int] | None:
    """Find the longest Luhn-valid card number in a run of digit groups.

    "4111 1111 1111 1111 0" holds a card followed by another number: the run
    is tried whole, then by its group-aligned parts, longest first.
    """
    groups = [match.span() for match in re.finditer(r"\d+", text)]
    if len(groups) == 1:
        digits = text
        valid = 13 <= len(digits) <= 19 and luhn_valid(digits)
        return (0, len(text)) if valid else None

    windows = [
        (groups[first][0], groups[last][1])
        for first in range(len(groups))
        for last in range(first, len(groups))
        if groups[first][1] - groups[first][0] == 4
        and text[groups[first][0]] in "23456"
    ]
    windows.sort(key=lambda span: (span[0] - span[1], span[0]))
    for start, end in windows:
        digits = re.sub(r"[ -]", "", text[start:end])
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return start, end
    return None


def _phone_valid(text: str) -> bool:
    count = sum(char.isdigit() for char in text)
    return 7 <= count <= 15


def _public_ip(text: str) -> bool:
    # Loopback and unspecified addresses name this machine, never a person;
    # reserved IPv6 space holds no hosts but does hold Python slices ("a[1::2]").
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if address.is_loopback or address.is_unspecified:
        return False
    return address.version == 4 or not address.is_reserved


# Building blocks. A number must not continue a word, path, version or port.
_NUM_START: Final = r"(?<![\w.:/-])"
_NUM_END: Final = r"(?![\w-]|[.:/]\d)"
_SEP: Final = r"""["']?[ \t]{0,3}(?:[:=#][ \t]{0,3}|is[ \t]+)?["']?"""

_MONTH: Final = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|"
    r"Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DATE: Final = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    rf"|(?i:{_MONTH})\.?[ \t]+\d{{1,2}}(?:st|nd|rd|th)?,?[ \t]+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?[ \t]+(?i:{_MONTH})\.?,?[ \t]+\d{{4}}"
    r"|(?:19|20)\d{6})"
)

# A capitalised name word: Smith, O'Brien, McDonald, Smith-Jones, Núñez.
_UPPER: Final = "A-ZÀ-ÖØ-Þ"
_LOWER: Final = "a-zß-öø-ÿ"
_NAME_WORD: Final = (
    rf"[{_UPPER}][{_LOWER}]{{0,30}}"
    rf"(?:['’-][{_UPPER}]?[{_LOWER}]{{1,30}}|[{_UPPER}][{_LOWER}]{{1,30}}){{0,3}}"
)
# Words that follow "patient" in ordinary log text and are not names.
_NOT_NAMES: Final = (
    r"(?!(?:A|An|The|Not|No|None|Null|Is|Was|Has|Had|Id|ID|Ids|IDs|Data|Record|"
    r"Records|Lookup|Found|Service|Error|Errors|Name|Names|Info|Portal|Count|List|"
    r"Query|Search|Summary|Risk|Score|Scores|Model|Table|Status|Update|Updated|"
    r"Created|Deleted|Missing|Unknown|Encounter|Encounters|Visit|Visits|Cohort|"
    r"Batch|Admitted|Discharged|Level|Context|Details|Identifier|Number)\b)"
)
# A name ends where no letter follows; an apostrophe or dash ends it only when
# no letter follows that either, so "name='John Smith'" and repr() output
# lose the whole name while "O'Brien" is never cut short.
_NAME_END: Final = r"(?!\w|['’-]\w)"
_NAME: Final = (
    # Upper case only in the "SMITH, JOHN" form of registration systems.
    r"(?:[A-Z]{2,30},[ \t]?[A-Z]{2,30}(?:[ \t]+[A-Z]\.?(?![\w]))?|"
    rf"{_NOT_NAMES}{_NAME_WORD}"
    rf"(?:,[ \t]*{_NAME_WORD}(?:[ \t]+[A-Z]\.(?!\w))?"
    rf"|(?:[ \t]+[A-Z]\.(?!\w))?(?:[ \t]+{_NOT_NAMES}{_NAME_WORD}){{0,2}}))"
)

NAME_CONTEXT_WORDS: Final = (
    "patient",
    "pt",
    "member",
    "subscriber",
    "beneficiary",
    "insured",
    "guarantor",
    "resident",
    "next of kin",
    "emergency contact",
)
"""Words after which a capitalised name is taken for a person's name."""

WHOLE_NAME: Final = rf"[ \t]*{_NAME}[ \t]*"
"""A value that is a name and nothing else: ``Smith``, ``John Q. Smith``."""

_STREET_SUFFIX: Final = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|"
    r"Place|Pl|Way|Terrace|Ter|Circle|Cir|Highway|Hwy|Parkway|Pkwy|Square|Sq|"
    r"Trail|Trl)"
)
_STATES: Final = (
    r"(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|"
    r"MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|PR|RI|SC|SD|TN|TX|UT|VT|VA|WA|"
    r"WV|WI|WY)"
)
# An identifier value after a context word: letters, digits, dashes, one digit
# at least (so "MRN lookup failed" keeps its words).
_ID_VALUE: Final = r"(?=[A-Za-z-]{0,40}\d)[A-Za-z0-9][A-Za-z0-9-]{2,40}(?![\w-])"
# MBI character classes (CMS MBI format: no S, L, O, I, B, Z).
_MBI_A: Final = "[AC-HJKMNP-RT-Y]"
_MBI_AN: Final = "[AC-HJKMNP-RT-Y0-9]"
_MBI: Final = rf"[1-9]{_MBI_A}{_MBI_AN}\d-?{_MBI_A}{_MBI_AN}\d-?{_MBI_A}{_MBI_A}\d\d"


def _pattern(
    kind: str,
    regex: str,
    *,
    gate: tuple[str, ...] = (),
    shape: tuple[bytes | str, ...] = (),
    validate: Callable[[str], bool] | None = None,
    locate: Callable[[str], tuple[int, int] | None] | None = None,
) -> PhiPattern:
    # Shape-gated patterns match ASCII digits only, so that the skeleton (which
    # maps ASCII digits) filters them exactly. Shapes given as bytes are
    # literals, as str regular expressions.
    flags = re.ASCII if shape else 0
    shapes = tuple(
        item.decode("ascii") if isinstance(item, bytes) else re.compile(item)
        for item in shape
    )
    return PhiPattern(kind, re.compile(regex, flags), gate, shapes, validate, locate)


_SKELETON_TABLE: Final = bytes.maketrans(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\t",
    b"9" * 10 + b"A" * 26 + b"a" * 26 + b" ",
)


def skeleton(text: str) -> str:
    """Return the shape of ``text``: ASCII digits as 9, letters as A or a, tab as space.

    ``"SSN 123-45-6789"`` has the skeleton ``"AAA 999-99-9999"``. Looking for
    a literal in it is a fast substring search, far cheaper than running a
    pattern, so a clean text costs little.

    Args:
        text: any string (lone surrogates included).

    Returns:
        The UTF-8 bytes of ``text`` with digits and ASCII letters mapped, read
        as Latin-1 (a ``str`` searches faster than ``bytes``).
    """
    mapped = text.encode("utf-8", "surrogatepass").translate(_SKELETON_TABLE)
    return mapped.decode("latin-1")


def _context(words: str) -> str:
    """Case-insensitive context words that must start and end on a word edge."""
    return rf"(?<![A-Za-z0-9])(?i:{words})(?![A-Za-z0-9])"


CATALOGUE: Final[tuple[PhiPattern, ...]] = (
    # Userinfo of a URL: https://user:pass@host keeps its scheme and host.
    _pattern(
        "CREDENTIALS",
        r"://(?P<v>[^\s/?#@\[\]]{1,256})@(?=[\w\[])",
        gate=("@",),
    ),
    # Authorization headers keep their scheme word (Bearer, Basic, ...).
    _pattern(
        "TOKEN",
        _context(r"(?:proxy-)?authorization")
        + r"""["']?[ \t]{0,3}[:=][ \t]{0,3}["']?"""
        + r"(?:(?i:bearer|basic|digest|negotiate|token|apikey)[ \t]+)?"
        + r"""(?P<v>[^\s"',;]{1,4096})""",
        gate=("authorization",),
    ),
    _pattern(
        "TOKEN",
        _context("bearer") + r"[ \t]+(?P<v>[A-Za-z0-9._~+/-]{8,4096}=*)",
        gate=("bearer",),
    ),
    # Cookie headers: every cookie of the header, to the end of the line.
    _pattern(
        "TOKEN",
        _context(r"(?:set-)?cookie")
        + r"""["']?[ \t]{0,3}[:=][ \t]{0,3}(?P<v>[^\s"'][^\r\n"]{0,4095})""",
        gate=("cookie",),
    ),
    # JSON Web Tokens, wherever they appear: header.payload.signature.
    _pattern(
        "TOKEN",
        r"(?<![\w-])(?P<v>eyJ[\w-]{5,4096}\.[\w-]{5,4096}\.[\w-]{0,4096})",
        gate=("eyj",),
    ),
    # Secrets in URL query strings: ?api_key=..., &token=...
    _pattern(
        "TOKEN",
        r"[?&;](?i:api[_-]?key|key|token|access[_-]?token|id[_-]?token|"
        r"refresh[_-]?token|auth|sig|signature|secret|client[_-]?secret|"
        r"session(?:[_-]?id)?|sid)=(?P<v>[^&#\s\"'<>]{1,4096})",
        gate=("key", "token", "auth", "sig", "secret", "session", "sid"),
    ),
    _pattern(
        "EMAIL",
        # "%40" is the "@" of a URL-encoded address in a path or query.
        r"(?<![\w.%+-])(?P<v>[A-Za-z0-9._%+-]{1,64}(?:@|%40)"
        r"(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24})(?![\w-])",
        gate=("@", "%40"),
    ),
    # Street addresses: "12 Main St", "400 North Oak Avenue, Apt 5", "PO Box 7".
    _pattern(
        "ADDRESS",
        r"(?<![\w.-])(?P<v>\d{1,6}[ \t](?:(?:[A-Z][a-z]{1,20}|\d{1,3}(?:st|nd|rd|th))"
        rf"\.?[ \t]+){{1,4}}{_STREET_SUFFIX}\b\.?"
        r"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?[ \t]*[\w-]{1,8})?"
        rf"(?:,[ \t]*[A-Z][a-z]{{1,20}}(?:[ \t]+[A-Z][a-z]{{1,20}}){{0,2}})?"
        rf"(?:,?[ \t]+{_STATES})?(?:[ \t]+\d{{5}}(?:-\d{{4}})?)?)(?![\w-])",
        shape=(b"9 Aa", b"9 9aa"),
    ),
    _pattern(
        "ADDRESS",
        r"(?<![A-Za-z0-9])(?P<v>(?i:p\.?[ \t]?o\.?[ \t]*box)[ \t]+\d{1,8})(?!\d)",
        gate=("box",),
        shape=(),
    ),
    # ZIP codes after a ZIP word or after "City, ST".
    _pattern(
        "ZIP",
        _context(r"zip(?:[ _-]?code)?|postal[ _-]?code|postcode")
        + _SEP
        + r"(?P<v>\d{5}(?:-\d{4})?)(?!\d)",
        gate=("zip", "postal", "postcode"),
    ),
    _pattern(
        "ZIP",
        rf"[A-Za-z],[ \t]?{_STATES}[ \t](?P<v>\d{{5}}(?:-\d{{4}})?)(?![\w-])",
        shape=(b"AA 99999",),
    ),
    _pattern(
        "DOB",
        _context(
            r"dob|d\.o\.b|date[ _-]of[ _-]birth|birth[ _-]?date|birthday|born(?: on)?"
        )
        + r"\.?"
        + _SEP
        + rf"(?P<v>{_DATE})(?![\w-])",
        gate=("dob", "d.o.b", "birth", "born"),
    ),
    _pattern(
        "SSN",
        _context(r"ssn|ss#|social[ _-]security(?:[ _-](?:number|no\.?|#))?")
        + _SEP
        + r"(?P<v>\d{3}[ -]?\d{2}[ -]?\d{4})(?!\d)",
        gate=("ssn", "ss#", "social"),
    ),
    _pattern(
        "MEDICARE",
        _context(
            r"hicn|hic[ _-]?(?:number|no|#)|mbi|medicare(?:[ _-](?:id|number|no|#|"
            r"beneficiary[ _-]identifier|claim[ _-]number))?"
        )
        + r"\.?"
        + _SEP
        + r"(?P<v>(?=[A-Za-z-]{0,14}\d)[A-Za-z0-9][A-Za-z0-9-]{7,14})(?![\w-])",
        gate=("hic", "mbi", "medicare"),
    ),
    _pattern(
        "NPI",
        _context(r"npi|national[ _-]provider[ _-]identifier")
        + r"(?:[ \t]*(?i:number|no\.?|#))?"
        + _SEP
        + r"(?P<v>\d{10})(?!\d)",
        gate=("npi", "national"),
    ),
    # After a word naming a clinician, ten digits are an NPI when the check
    # digit agrees: "referring provider 1245319599".
    _pattern(
        "NPI",
        _context(
            r"provider|prescriber|physician|clinician|practitioner|referring|"
            r"attending|rendering|ordering"
        )
        + r"(?:[ \t]+(?i:id|number|no\.?|#))?"
        + _SEP
        + r"(?P<v>\d{10})(?!\d)",
        gate=(
            "provider",
            "prescriber",
            "physician",
            "clinician",
            "practitioner",
            "referring",
            "attending",
            "rendering",
            "ordering",
        ),
        validate=npi_valid,
    ),
    _pattern(
        "MRN",
        _context(
            r"mrn|medical[ _-]record(?:[ _-](?:number|no\.?|num|#))?|"
            r"med[ _-]?rec(?:[ _-]?(?:no\.?|#))?|chart[ _-](?:number|no\.?|#)|"
            r"patient[ _-]?(?:id|identifier|number|no\.?|#)"
        )
        # "MRN-12345678" and "mrn_12345678" glue the value to the word.
        + rf"\.?(?:[-_]|{_SEP})"
        + rf"(?P<v>{_ID_VALUE})",
        gate=("mrn", "medical", "med", "chart", "patient"),
    ),
    # "MRN12345678": the abbreviation glued to a number of six digits or more.
    _pattern(
        "MRN",
        r"(?<![A-Za-z0-9])(?i:mrn)(?P<v>\d{6,12})(?![\w-])",
        gate=("mrn",),
    ),
    _pattern(
        "ACCOUNT",
        _context(
            r"account|acct|member|subscriber|policy|claim|insurance|"
            r"beneficiary|guarantor"
        )
        + r"(?:[ _-]?(?i:id|number|num|no\.?|#|identifier))?\.?"
        + _SEP
        + rf"(?P<v>{_ID_VALUE})",
        gate=(
            "account",
            "acct",
            "member",
            "subscriber",
            "policy",
            "claim",
            "insurance",
            "beneficiary",
            "guarantor",
        ),
    ),
    _pattern(
        "PHONE",
        _context(r"phone|tel|telephone|fax|cell|mobile|pager")
        + r"(?:[ _-]?(?i:number|no\.?|#))?\.?"
        + _SEP
        + r"(?P<v>\+?\(?\d[\d \t().-]{5,18}\d)(?![\w-])",
        validate=_phone_valid,
        gate=("phone", "tel", "fax", "cell", "mobile", "pager"),
    ),
    _pattern(
        "NAME",
        _context("|".join(w.replace(" ", "[ _-]") for w in NAME_CONTEXT_WORDS))
        + r"(?:[ _-]?(?i:name))?\.?"
        + r"""["']?(?:[ \t]{0,3}[:=][ \t]{0,3}|[ \t]{1,3})["']?"""
        + rf"(?P<v>{_NAME}){_NAME_END}",
        gate=(
            "patient",
            "pt",
            "member",
            "subscriber",
            "beneficiary",
            "insured",
            "guarantor",
            "resident",
            "of kin",
            "of_kin",
            "of-kin",
            "emergency",
        ),
    ),
    _pattern(
        "NAME",
        r"""(?<![A-Za-z0-9._-])name["']?[ \t]{0,3}[:=][ \t]{0,3}["']?"""
        + rf"(?P<v>{_NAME_WORD}(?:,?[ \t]+(?:[A-Z]\.(?!\w)|{_NAME_WORD})){{1,3}})"
        + _NAME_END,
        gate=("name",),
    ),
    _pattern(
        "NAME",
        r"(?<![A-Za-z0-9])(?:Mr|Mrs|Ms|Mx|Dr|Miss|Prof)\.?[ \t]+"
        + rf"(?P<v>{_NOT_NAMES}{_NAME_WORD}(?:[ \t]+{_NAME_WORD})?){_NAME_END}",
        gate=("Mr", "Ms", "Mx", "Dr", "Miss", "Prof"),
    ),
    # Typed in lower case, a title needs its dot: "dr. Gregory House".
    _pattern(
        "NAME",
        r"(?<![A-Za-z0-9])(?:dr|prof)\.[ \t]+"
        + rf"(?P<v>{_NOT_NAMES}{_NAME_WORD}(?:[ \t]+{_NAME_WORD})?){_NAME_END}",
        gate=("dr.", "prof."),
    ),
    # Identifiers recognised by their shape alone.
    _pattern(
        "SSN",
        rf"{_NUM_START}(?P<v>\d{{3}}-\d{{2}}-\d{{4}}){_NUM_END}",
        shape=(b"999-99-9999",),
    ),
    _pattern(
        "MEDICARE",
        rf"(?<![A-Za-z0-9-])(?P<v>{_MBI})(?![A-Za-z0-9-])",
        shape=(b"AA99",),
    ),
    _pattern(
        "CARD",
        rf"{_NUM_START}(?P<v>[2-6]\d{{3}}(?:\d{{9,15}}"
        rf"|(?P<s>[ -])\d{{1,6}}(?:(?P=s)\d{{1,6}}){{1,6}})){_NUM_END}",
        shape=(r"9999(?<![A-Za-z9._:/-]9999)(?:999999999|[ -]9999)",),
        locate=_locate_card,
    ),
    _pattern(
        "PHONE",
        r"(?<![\w.:/+-])(?P<v>(?:\+1[ \t.-]?|1-)?"
        r"(?:\([2-9]\d\d\)[ \t]?\d{3}[ \t.-]\d{4}"
        r"|[2-9]\d\d-\d{3}-\d{4}"
        r"|[2-9]\d\d\.\d{3}\.\d{4}))" + _NUM_END,
        shape=(b"999-999-9999", b"999.999.9999", b"(999)"),
    ),
    _pattern(
        "PHONE",
        r"(?<![\w.:/-])(?P<v>\+1[ \t.-]?\(?[2-9]\d\d\)?[ \t.-]?\d{3}[ \t.-]?\d{4})"
        + _NUM_END,
        gate=("+1",),
        shape=(b"+9",),
    ),
    _pattern(
        "ZIP",
        rf"{_NUM_START}(?P<v>\d{{5}}-\d{{4}}){_NUM_END}",
        shape=(b"99999-9999",),
    ),
    _pattern(
        "IP",
        # A dotted quad after "version" or "build" is a version number.
        r"(?<![\w.])(?<!(?i:version) )(?<!(?i:release) )(?<!(?i:build) )"
        r"(?P<v>(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
        r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d))(?![\w]|\.\d)",
        validate=_public_ip,
        shape=(r"9\.9{1,3}\.9{1,3}\.9",),
    ),
    _pattern(
        "IP",
        r"(?<![\w:.])(?P<v>(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4})(?![\w:])",
        validate=_public_ip,
        shape=(r":[9aA]{1,4}:[9aA]{1,4}:[9aA]{1,4}:[9aA]{1,4}:[9aA]{1,4}:[9aA]{1,4}:",),
    ),
    _pattern(
        "IP",
        r"(?<![\w:.])(?P<v>(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{0,4}::"
        r"(?:[0-9A-Fa-f]{1,4}:){0,6}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?"
        r"(?:%[\w.-]{1,16})?)(?![\w:])",
        gate=("::",),
        validate=_public_ip,
    ),
)
"""Built-in patterns, in the order they run."""


# Attribute and field keys whose value is replaced whole, with the kind they
# redact to. Spelled in snake case; the scrubber also matches patientName,
# patient-name and PATIENT.NAME (see Scrubber.redacts_key).
BUILTIN_REDACT_KEYS: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "password",
            "passwd",
            "pwd",
            "secret",
            "client_secret",
            "private_key",
            "credentials",
            "userinfo",
        ),
        "CREDENTIALS",
    ),
    **dict.fromkeys(
        (
            "token",
            "access_token",
            "refresh_token",
            "id_token",
            "api_key",
            "apikey",
            "x_api_key",
            "authorization",
            "proxy_authorization",
            "cookie",
            "set_cookie",
            "session_id",
            "session_token",
            "bearer",
            "jwt",
        ),
        "TOKEN",
    ),
    **dict.fromkeys(("ssn", "social_security_number"), "SSN"),
    **dict.fromkeys(
        (
            "patient_name",
            "first_name",
            "last_name",
            "full_name",
            "given_name",
            "family_name",
            "middle_name",
            "surname",
            "maiden_name",
        ),
        "NAME",
    ),
    **dict.fromkeys(
        ("dob", "birth_date", "date_of_birth", "birthdate", "birthday", "patient_dob"),
        "DOB",
    ),
    **dict.fromkeys(
        ("mrn", "medical_record_number", "patient_id", "patient_mrn", "chart_number"),
        "MRN",
    ),
    **dict.fromkeys(
        (
            "address",
            "street_address",
            "street",
            "address_line1",
            "address_line2",
            "home_address",
            "patient_address",
        ),
        "ADDRESS",
    ),
    **dict.fromkeys(("zip", "zip_code", "zipcode", "postal_code", "postcode"), "ZIP"),
    **dict.fromkeys(
        (
            "phone",
            "phone_number",
            "telephone",
            "fax",
            "mobile",
            "cell_phone",
            "patient_phone",
        ),
        "PHONE",
    ),
    **dict.fromkeys(("email", "e_mail", "email_address", "patient_email"), "EMAIL"),
    **dict.fromkeys(
        (
            "member_id",
            "subscriber_id",
            "account_number",
            "account_id",
            "policy_number",
            "policy_id",
            "claim_number",
            "claim_id",
            "insurance_id",
        ),
        "ACCOUNT",
    ),
    **dict.fromkeys(("npi",), "NPI"),
    **dict.fromkeys(("mbi", "hicn", "medicare_id", "medicare_number"), "MEDICARE"),
    **dict.fromkeys(("card_number", "credit_card", "cc_number"), "CARD"),
}
"""Keys redacted whole; ``KEY_SUFFIXES`` also catch ``db_password`` etc."""

KEY_SUFFIXES: Final[dict[str, str]] = {
    "password": "CREDENTIALS",
    "passwd": "CREDENTIALS",
    "secret": "CREDENTIALS",
    "token": "TOKEN",
    "apikey": "TOKEN",
    "authorization": "TOKEN",
    "cookie": "TOKEN",
    "ssn": "SSN",
}
"""A normalised key ending in one of these is redacted as that kind."""

BUILTIN_ALLOW_KEYS: Final[tuple[str, ...]] = (
    # OpenTelemetry semantic-convention keys that never carry patient data.
    "exception.type",
    "exception.escaped",
    "error.type",
    "code.*",
    "service.*",
    "telemetry.*",
    "otel.*",
    "healthai.*",
    "http.response.status_code",
    "http.status_code",
    "http.request.method",
    "http.method",
    "http.route",
    "http.scheme",
    "rpc.system",
    "rpc.service",
    "rpc.method",
    "rpc.grpc.status_code",
    "db.system",
    "db.operation",
    "db.operation.name",
    "messaging.system",
    "messaging.operation",
    "network.protocol.name",
    "network.protocol.version",
    "network.transport",
    "network.type",
    "server.port",
    "client.port",
    "thread.id",
    "thread.name",
    "process.pid",
    "process.runtime.*",
    "host.arch",
    "os.*",
    "trace_id",
    "span_id",
    "trace_flags",
    "otelTraceID",
    "otelSpanID",
    "otelServiceName",
    "log.iostream",
)
"""Keys (or ``prefix.*`` families) whose values are never touched."""
