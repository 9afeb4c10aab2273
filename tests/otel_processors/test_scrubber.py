"""Tests for otel_processors.scrubber: patient data removed by value and by key."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_processors import _guard
from otel_processors.errors import ConfigurationError
from otel_processors.phi_patterns import luhn_valid, npi_valid
from otel_processors.scrubber import PATTERNS_ENV, Scrubber

# Each message carries patient data in a realistic format; the expected text
# keeps the context words and names the kind of everything removed.
PHI_CORPUS = [
    (
        "lookup failed for patient John Smith, SSN 123-45-6789",
        "lookup failed for patient [REDACTED:NAME], SSN [REDACTED:SSN]",
    ),
    ("ssn=123456789 rejected", "ssn=[REDACTED:SSN] rejected"),
    ("ssn: 123 45 6789 Rejected", "ssn: [REDACTED:SSN] Rejected"),
    ("phone=555 123 4567 OK", "phone=[REDACTED:PHONE] OK"),
    ("social security number: 123 45 6789", "social security number: [REDACTED:SSN]"),
    ("KeyError: '078-05-1120'", "KeyError: '[REDACTED:SSN]'"),
    ("MRN: A1234567 not found", "MRN: [REDACTED:MRN] not found"),
    ("mrn=00482913", "mrn=[REDACTED:MRN]"),
    (
        "MRN-12345678 merged into mrn_A1234567",
        "MRN-[REDACTED:MRN] merged into mrn_[REDACTED:MRN]",
    ),
    (
        "medical record number 4482913 locked",
        "medical record number [REDACTED:MRN] locked",
    ),
    (
        "no encounter for patient id 7f3e2a10-5b1c-4d2e-9f00-1a2b3c4d5e6f",
        "no encounter for patient id [REDACTED:MRN]",
    ),
    ("call (555) 123-4567 now", "call [REDACTED:PHONE] now"),
    ("callback 555-123-4567", "callback [REDACTED:PHONE]"),
    ("dial +1 555 123 4567", "dial [REDACTED:PHONE]"),
    ("dial +1-555-123-4567", "dial [REDACTED:PHONE]"),
    ("pager 555.123.4567", "pager [REDACTED:PHONE]"),
    ("fax: 5551234567 failed", "fax: [REDACTED:PHONE] failed"),
    ("tel 555 123 4567", "tel [REDACTED:PHONE]"),
    ("notify jane.doe+labs@example-health.org", "notify [REDACTED:EMAIL]"),
    ("To: <J.Smith@hospital.co.uk>", "To: <[REDACTED:EMAIL]>"),
    ("DOB: 03/14/1962", "DOB: [REDACTED:DOB]"),
    ("date of birth 1962-03-14 mismatch", "date of birth [REDACTED:DOB] mismatch"),
    ("born on March 14, 1962", "born on [REDACTED:DOB]"),
    ("birth_date='14 Mar 1962'", "birth_date='[REDACTED:DOB]'"),
    ("Pt. Smith, John admitted", "Pt. [REDACTED:NAME] admitted"),
    ("patient: Mary O'Brien-Lee", "patient: [REDACTED:NAME]"),
    ("Dr. Gregory House signed", "Dr. [REDACTED:NAME] signed"),
    ("patient José Núñez-Peña", "patient [REDACTED:NAME]"),
    ("Pt. SMITH, JOHN A admitted", "Pt. [REDACTED:NAME] admitted"),
    ("DOB=19620314", "DOB=[REDACTED:DOB]"),
    (
        "SELECT * FROM visits WHERE ssn = '123-45-6789' AND last_name = 'Smith'",
        "SELECT * FROM visits WHERE ssn = '[REDACTED:SSN]' AND last_name = "
        "'[REDACTED:NAME]'",
    ),
    ("visit 12 Oak Dr, Springfield", "visit [REDACTED:ADDRESS]"),
    ("Mrs. Jones called", "Mrs. [REDACTED:NAME] called"),
    ("name=John Q. Public", "name=[REDACTED:NAME]"),
    ('{"patient_name": "Ana María"}', '{"patient_name": "[REDACTED:NAME]"}'),
    ("last_name: McDonald", "last_name: [REDACTED:NAME]"),
    (
        "ship to 1600 Pennsylvania Ave, Washington, DC 20500",
        "ship to [REDACTED:ADDRESS]",
    ),
    ("lives at 42 West 5th St Apt 3", "lives at [REDACTED:ADDRESS]"),
    ("PO Box 1234", "[REDACTED:ADDRESS]"),
    ("Springfield, IL 62704", "Springfield, IL [REDACTED:ZIP]"),
    ("zip code 02139", "zip code [REDACTED:ZIP]"),
    ("routed 98101-2345", "routed [REDACTED:ZIP]"),
    ("client 203.0.113.7 refused", "client [REDACTED:IP] refused"),
    ("peer [2001:db8::8a2e:370:7334]:443", "peer [[REDACTED:IP]]:443"),
    ("from fe80:0:0:0:202:b3ff:fe1e:8329", "from [REDACTED:IP]"),
    ("card 4111 1111 1111 1111 declined", "card [REDACTED:CARD] declined"),
    ("pan=5500-0000-0000-0004", "pan=[REDACTED:CARD]"),
    ("amex 378282246310005", "amex [REDACTED:CARD]"),
    ("card 3782 822463 10005", "card [REDACTED:CARD]"),
    ("NPI 1234567893 inactive", "NPI [REDACTED:NPI] inactive"),
    ("provider npi: 1245319599", "provider npi: [REDACTED:NPI]"),
    ("referring provider 1245319599", "referring provider [REDACTED:NPI]"),
    ("MBI 1EG4-TE5-MK73", "MBI [REDACTED:MEDICARE]"),
    (
        "eligibility for 1EG4TE5MK73 failed",
        "eligibility for [REDACTED:MEDICARE] failed",
    ),
    ("HICN 123456789A", "HICN [REDACTED:MEDICARE]"),
    ("account 99887766 locked", "account [REDACTED:ACCOUNT] locked"),
    ("acct# 4455-2231", "acct# [REDACTED:ACCOUNT]"),
    ("member id: XK992211", "member id: [REDACTED:ACCOUNT]"),
    ("subscriber W123456789", "subscriber [REDACTED:ACCOUNT]"),
    ("policy number PL-2231-88", "policy number [REDACTED:ACCOUNT]"),
    (
        "GET https://admin:hunter2@db.internal:5432/fhir",
        "GET https://[REDACTED:CREDENTIALS]@db.internal:5432/fhir",
    ),
    (
        "postgresql://svc_user:s3cr%40t@10.0.0.5/ehr",
        "postgresql://[REDACTED:CREDENTIALS]@[REDACTED:IP]/ehr",
    ),
    ("Authorization: Bearer abc.def-123_456", "Authorization: Bearer [REDACTED:TOKEN]"),
    ("authorization=Basic dXNlcjpwYXNz", "authorization=Basic [REDACTED:TOKEN]"),
    ("sent bearer 9f8e7d6c5b4a39281706", "sent bearer [REDACTED:TOKEN]"),
    (
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r",
        "token [REDACTED:TOKEN]",
    ),
    (
        "GET /fhir/Patient?api_key=AKIA1234567890&_count=10",
        "GET /fhir/Patient?api_key=[REDACTED:TOKEN]&_count=10",
    ),
    (
        "redirect /cb?code=x&token=abcdef123",
        "redirect /cb?code=x&token=[REDACTED:TOKEN]",
    ),
    ("Cookie: sid=abc123; theme=dark", "Cookie: [REDACTED:TOKEN]"),
    ("password=hunter2 retry", "password=[REDACTED:CREDENTIALS] retry"),
    ('{"db_password": "p@ss word"}', '{"db_password": "[REDACTED:CREDENTIALS]"}'),
    # Single quotes, as repr() and %r write strings.
    ("name='John Smith'", "name='[REDACTED:NAME]'"),
    ("{'name': 'John Smith'}", "{'name': '[REDACTED:NAME]'}"),
    ("patient 'John Smith' not found", "patient '[REDACTED:NAME]' not found"),
    ("emergency contact 'Jane Doe'", "emergency contact '[REDACTED:NAME]'"),
    ("patient John O'Brien-Smith's chart", "patient [REDACTED:NAME] chart"),
    (
        "GET /users/john.doe%40example.com/profile",
        "GET /users/[REDACTED:EMAIL]/profile",
    ),
    ("record MRN12345678 opened", "record MRN[REDACTED:MRN] opened"),
    ("seen by dr. Gregory House today", "seen by dr. [REDACTED:NAME] today"),
]

# Text that looks like patient data to a careless pattern and must survive.
LOOK_ALIKES = [
    'File "/srv/app/model.py", line 123, in score',
    'File "/usr/lib/python3.11/site-packages/sklearn/base.py", line 1152, in wrapper',
    '  File "<frozen importlib._bootstrap>", line 1204, in _gcd_import',
    "2026-12-03T18:48:31Z INFO request served",
    "2026-12-03 18:48:31,123 WARNING drift above threshold",
    "12/03/2026 18:48:31 job done",
    "opentelemetry-sdk 1.45.2, instrumentation 0.66b2",
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "exporting to http://collector:4318/v1/traces",
    "listening on 0.0.0.0:8080 and 127.0.0.1:9090 and [::1]:4317",
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "digest E3B0C44298FC1C149AFBF4C8996FB924 cached",
    "request 550e8400-e29b-41d4-a716-446655440000 accepted",
    "id 4111111111111112 is not a card (Luhn-invalid)",
    "counter 1764787711000 epoch ms, 1764787711 epoch s",
    "took 1234 ms, p99 5678 ms",
    "HTTP 503 Service Unavailable after 3 retries",
    "diagnosis E11.9 and I10, HbA1c 7.2 %, LDL 130 mg/dL",
    "running version 8.8.8.8 of the scorer, build 1.2.3.4",
    "MRN1 and mrn12 are too short to be record numbers",
    "drop the stale rows; dr. no",
    "model readmission-v3 scored 0.8123 (threshold 0.5)",
    "Patient Not Found",
    "patient record missing for cohort 2026Q4",
    "MRN lookup failed",
    "batch 2026-12-03/part-00017.parquet written",
    "retry policy exponential, max 5",
    "provider 1764787711 responded (epoch seconds, check digit fails)",
    "member of group admins",
    "numpy 1.26.4 scipy 1.11.4",
    "ValueError: could not convert string to float: 'abc'",
    "GET /api/v1/patients/{patient_id}/score 200",
    "OID 1.2.840.113619.2.55",
    "shape (1024, 768) dtype float32",
    "    evens = batch[::2]; odds = batch[1::2]",
    "std::vector<int> and deadbeef::cafe",
]


@pytest.fixture
def scrubber() -> Scrubber:
    """A scrubber with the built-in configuration."""
    return Scrubber()


@pytest.mark.parametrize(("text", "expected"), PHI_CORPUS)
def test_patient_data_is_replaced_by_its_kind(
    scrubber: Scrubber, text: str, expected: str
) -> None:
    """Each identifier is replaced by a marker naming its kind; context stays."""
    result = scrubber.scrub(text)

    assert expected == result


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_survive_untouched(scrubber: Scrubber, text: str) -> None:
    """Line numbers, timestamps, versions, ids and lab values are not PHI."""
    result = scrubber.scrub(text)

    assert text == result


def test_stack_trace_keeps_frames_and_loses_the_patient(scrubber: Scrubber) -> None:
    """A traceback keeps file, line and function; only the message is scrubbed."""
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/model.py", line 123, in score\n'
        "    features = load(patient_id)\n"
        '  File "/srv/app/store.py", line 45, in load\n'
        "    raise KeyError(f'no record for MRN {mrn}')\n"
        "KeyError: 'no record for MRN 00482913, patient John Smith, DOB 1962-03-14'"
    )
    expected = (
        trace.replace("00482913", "[REDACTED:MRN]")
        .replace("John Smith", "[REDACTED:NAME]")
        .replace("1962-03-14", "[REDACTED:DOB]")
    )

    result = scrubber.scrub(trace)

    assert expected == result


def test_long_log_is_scrubbed_line_by_line_like_short_texts(scrubber: Scrubber) -> None:
    """Texts long enough to be scrubbed in blocks give the same result."""
    lines = [
        f"2026-12-03T18:48:{i % 60:02d}Z INFO served request {i}" for i in range(400)
    ]
    lines[17] = "lookup for patient John Smith SSN 123-45-6789"
    lines[333] = "callback 555-123-4567 from jane@example.org"
    text = "\n".join(lines)
    expected = "\n".join(scrubber.scrub(line) for line in lines)

    result = scrubber.scrub(text)

    assert expected == result


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("http.request.header.authorization", True),
        ("http.request.header.x-api-key", True),
        ("patientName", True),
        ("patient-name", True),
        ("Patient.First_Name", True),
        ("member_id", True),
        ("dob", True),
        ("exception.message", False),
        ("exception.type", False),
        ("code.lineno", False),
        ("server.address", False),
        ("http.response.status_code", False),
        ("max_tokens", False),
    ],
)
def test_sensitive_keys_are_recognised_in_any_spelling(
    scrubber: Scrubber, key: str, expected: bool
) -> None:
    """Case, separators and dotted prefixes do not hide a sensitive key."""
    result = scrubber.redacts_key(key)

    assert expected == result


def test_values_under_sensitive_keys_are_replaced_whole(scrubber: Scrubber) -> None:
    """A sensitive key redacts its value whatever the type; others keep numbers."""
    attributes = {
        "patient_name": "Anything At All",
        "phone": 5551234567,
        "ssn": 123456789,
        "code.lineno": 5551234567,
        "retries": 123456789,
        "http.request.header.authorization": ["Bearer a", "Bearer b"],
        "exception.type": "KeyError",
        "exception.message": "no chart for patient John Smith",
        "healthai.error.code": "DATA-404 john@example.org",
        "ok": True,
        "ratio": 0.25,
    }
    expected = {
        "patient_name": "[REDACTED:NAME]",
        "phone": "[REDACTED:PHONE]",
        "ssn": "[REDACTED:SSN]",
        "code.lineno": 5551234567,
        "retries": 123456789,
        "http.request.header.authorization": ["[REDACTED:TOKEN]", "[REDACTED:TOKEN]"],
        "exception.type": "KeyError",
        "exception.message": "no chart for patient [REDACTED:NAME]",
        "healthai.error.code": "DATA-404 john@example.org",
        "ok": True,
        "ratio": 0.25,
    }

    result = scrubber.scrub_attributes(attributes)

    assert expected == result


def test_nested_values_are_scrubbed_by_their_own_keys(scrubber: Scrubber) -> None:
    """Mappings apply their keys to their values; sequences keep their type."""
    value = {
        "patient": {"first_name": "Ann", "age": 54},
        "notes": ("seen by Dr. Watson", "ok"),
        "raw": b"SSN 123-45-6789",
        "clean": b"\xff\x00binary",
    }
    expected = {
        "patient": {"first_name": "[REDACTED:NAME]", "age": 54},
        "notes": ("seen by Dr. [REDACTED:NAME]", "ok"),
        "raw": b"SSN [REDACTED:SSN]",
        "clean": b"\xff\x00binary",
    }

    result = scrubber.scrub_value(value, "body")

    assert expected == result


def test_values_under_name_context_keys_are_scrubbed_as_after_the_word(
    scrubber: Scrubber,
) -> None:
    """``{"patient": "Mary Jones"}`` loses the name as ``patient Mary Jones`` does."""
    attributes = {
        "patient": "Mary Jones",
        "name": "John Smith",
        "pt": "Ann Lee",
        "member": "status Active",
        "service.name": "Billing Service",
        "name_of_model": "Readmission Risk",
    }
    expected = {
        "patient": "[REDACTED:NAME]",
        "name": "[REDACTED:NAME]",
        "pt": "[REDACTED:NAME]",
        "member": "status Active",
        "service.name": "Billing Service",
        "name_of_model": "Readmission Risk",
    }

    result = scrubber.scrub_attributes(attributes)

    assert expected == result


def test_structured_names_lose_every_part(scrubber: Scrubber) -> None:
    """A name held as parts, as FHIR's HumanName holds it, loses each part."""
    patient = {
        "resourceType": "Patient",
        "name": [
            {
                "use": "official",
                "family": "Smith",
                "given": ["John", "Quincy"],
                "text": "John Q. Smith",
            }
        ],
        "gender": "male",
    }
    expected = {
        "resourceType": "Patient",
        "name": [
            {
                "use": "official",
                "family": "[REDACTED:NAME]",
                "given": ["[REDACTED:NAME]", "[REDACTED:NAME]"],
                "text": "[REDACTED:NAME]",
            }
        ],
        "gender": "male",
    }

    result = scrubber.scrub_value(patient)

    assert expected == result


def test_mapping_keys_are_scrubbed_and_kept_apart(scrubber: Scrubber) -> None:
    """Keys carry data too; keys that scrub alike are numbered, not merged."""
    value = {"jdoe@mail.com": 0.8, "ann@mail.com": 0.3, "123-45-6789": 1, "ok": 2}
    expected = {
        "[REDACTED:EMAIL]": 0.8,
        "[REDACTED:EMAIL]#2": 0.3,
        "[REDACTED:SSN]": 1,
        "ok": 2,
    }

    result = scrubber.scrub_value({"scores": value})

    assert {"scores": expected} == result


def test_pattern_whose_group_sits_out_a_match_replaces_the_match() -> None:
    """A ``v`` group in one alternative only: the other alternative's match goes."""
    scrubber = Scrubber(extra_patterns={"ODD": r"(?:(?P<v>\d+)Q|abc)"})

    result = scrubber.scrub("abc 12Q abc")

    assert "[REDACTED:ODD] [REDACTED:ODD]Q [REDACTED:ODD]" == result


def test_allow_and_redact_keys_extend_the_built_in_lists() -> None:
    """User allow keys are never touched; user redact keys win over allow lists."""
    scrubber = Scrubber(
        allow_keys=["app.contact.*"],
        redact_keys=["service.instance.id", "ward"],
    )
    attributes = {
        "app.contact.email": "desk@example.org",
        "service.instance.id": "pod-7",
        "ward": "B4",
        "note": "ward=B4 seen",
    }
    expected = {
        "app.contact.email": "desk@example.org",
        "service.instance.id": "[REDACTED:KEY]",
        "ward": "[REDACTED:KEY]",
        "note": "ward=[REDACTED:KEY] seen",
    }

    result = scrubber.scrub_attributes(attributes)

    assert expected == result


def test_extra_patterns_name_their_own_kind() -> None:
    """A user pattern replaces its match, or its ``v`` group, by its kind."""
    scrubber = Scrubber(
        extra_patterns={"BED": r"bed (?P<v>\d{3}[A-Z])", "STUDY": r"STU-\d{6}"}
    )

    result = scrubber.scrub("moved to bed 412B for STU-123456")

    assert "moved to bed [REDACTED:BED] for [REDACTED:STUDY]" == result


@pytest.mark.parametrize(
    ("patterns", "fragment"),
    [
        ({"BED": "bed ("}, "pattern BED: 'bed ('"),
        ({"bed": r"\d"}, "pattern kind 'bed'"),
        ({"EMPTY": r"x*"}, "matches the empty string"),
        ({"BIG": "a{4294967296}"}, "pattern BIG: 'a{4294967296}'"),
    ],
)
def test_bad_extra_pattern_fails_at_start_naming_it(
    patterns: dict[str, str], fragment: str
) -> None:
    """A pattern that cannot work is a configuration error naming kind and regex."""
    with pytest.raises(ConfigurationError) as caught:
        Scrubber(extra_patterns=patterns)

    result = str(caught.value)

    assert fragment in result


def test_from_env_reads_the_patterns_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEALTHAI_SCRUB_PATTERNS names a YAML file of patterns and keys."""
    path = tmp_path / "scrub.yaml"
    path.write_text(
        "patterns:\n  BED: 'bed \\d{3}[A-Z]'\n"
        "allow_keys: [app.safe]\nredact_keys: [ward]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(PATTERNS_ENV, str(path))
    scrubber = Scrubber.from_env()

    result = (
        scrubber.scrub("bed 412B"),
        scrubber.scrub_value("555-123-4567", "app.safe"),
        scrubber.redacts_key("ward"),
    )

    assert ("[REDACTED:BED]", "555-123-4567", True) == result


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("patterns: [a, b]\n", "key 'patterns'"),
        ("allow_keys: 3\n", "key 'allow_keys'"),
        ("colours: {}\n", "unknown key 'colours'"),
        ("patterns: {BED: 'bed ('}\n", "key 'patterns': pattern BED"),
        ("patterns: {: [\n", "not valid YAML"),
    ],
)
def test_bad_patterns_file_names_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, fragment: str
) -> None:
    """Errors in the patterns file name the file and the offending key."""
    path = tmp_path / "scrub.yaml"
    path.write_text(content, encoding="utf-8")
    monkeypatch.setenv(PATTERNS_ENV, str(path))
    with pytest.raises(ConfigurationError) as caught:
        Scrubber.from_env()

    message = str(caught.value)

    result = (str(path) in message, fragment in message)

    assert (True, True) == result


def test_missing_patterns_file_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable naming a missing file fails at start, naming the file."""
    path = tmp_path / "absent.yaml"
    monkeypatch.setenv(PATTERNS_ENV, str(path))
    with pytest.raises(ConfigurationError) as caught:
        Scrubber.from_env()

    result = str(caught.value)

    assert str(path) in result


def test_stats_count_replacements_by_kind_across_threads() -> None:
    """Counts are exact when several threads scrub at once."""
    scrubber = Scrubber()

    def work() -> None:
        for _ in range(50):
            scrubber.scrub("SSN 123-45-6789 mail a@example.org")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = dict(scrubber.stats())

    assert {"SSN": 200, "EMAIL": 200} == result


def test_failure_inside_scrubbing_fails_closed(
    scrubber: Scrubber, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal error never reaches the caller and never leaks the text."""
    _guard.reset_failures()

    def broken(text: str) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(scrubber, "_scrub_text", broken)

    result = (scrubber.scrub("SSN 123-45-6789"), _guard.failure_counts())

    assert ("[REDACTED:ERROR]", {"scrubber.scrub": 1}) == result


@pytest.mark.parametrize(
    "text",
    [
        "SSN 123-45-6789 \ud800 lone surrogate",
        "nul\x00byte 555-123-4567",
        b"caf\xe9 mrn=12345678".decode("utf-8", "surrogateescape"),
        "\u2028\u0085\x0b\x0c mixed separators a@example.org",
        "",
    ],
)
def test_awkward_strings_are_scrubbed_without_error(
    scrubber: Scrubber, text: str
) -> None:
    """Surrogates, NUL and unusual separators are handled like any text."""
    scrubbed = scrubber.scrub(text)

    result = [
        fragment
        for fragment in (
            "[REDACTED:ERROR]",
            "123-45-6789",
            "555-123-4567",
            "12345678",
            "a@example.org",
        )
        if fragment in scrubbed
    ]

    assert [] == result


@pytest.mark.parametrize(
    "hostile",
    [
        "1-" * 500_000,
        "a@" * 500_000,
        "1:" * 500_000 + "::",
        "patient A" * 110_000,
        "ssn= " * 200_000,
        "9" * 1_000_000,
        "1 Main " * 150_000,
        "x." * 500_000 + "@",
        "://" + "a" * 1_000_000,
        "mrn " * 250_000,
        "eyJ" + "a" * 1_000_000,
        "4111 " * 200_000,
    ],
)
def test_hostile_megabyte_is_scrubbed_in_linear_time(
    scrubber: Scrubber, hostile: str
) -> None:
    """No pattern backtracks catastrophically: 1 MB of bait takes seconds, not hours.

    About 2 s of CPU at most on a quiet machine; the bound leaves room for a
    loaded one, while catastrophic backtracking on 1 MB would take hours.
    """
    start = time.process_time()
    scrubber.scrub(hostile)

    result = time.process_time() - start

    assert result < 20.0


def test_luhn_and_npi_checks_match_published_examples() -> None:
    """Check digits agree with the CMS NPI example and a test card number."""
    result = (
        luhn_valid("4111111111111111"),
        luhn_valid("4111111111111112"),
        npi_valid("1234567893"),
        npi_valid("1234567890"),
    )

    assert (True, False, True, False) == result


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from(" \n:-./@"),
    max_size=200,
)
_SEPARATORS = st.sampled_from([" ", "\n", "\t", " (", ") ", ", ", "; "])


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=300))
def test_scrub_never_raises_and_is_idempotent(text: str) -> None:
    """Any string, surrogates included, scrubs without error to a fixed point."""
    scrubber = Scrubber()
    once = scrubber.scrub(text)

    result = scrubber.scrub(once)

    assert once == result
    assert "[REDACTED:ERROR]" not in result


@settings(max_examples=300, deadline=None)
@given(
    prefix=_TEXT,
    suffix=_TEXT,
    left=_SEPARATORS,
    right=_SEPARATORS,
    planted=st.sampled_from(
        [
            "123-45-6789",
            "078-05-1120",
            "jane.doe@example.org",
            "x_1@mail.example-health.com",
            "4111 1111 1111 1111",
            "4111111111111111",
            "5500-0000-0000-0004",
            "378282246310005",
        ]
    ),
)
def test_planted_identifier_never_survives(
    prefix: str, suffix: str, left: str, right: str, planted: str
) -> None:
    """An SSN, e-mail or card number set anywhere in random text is removed."""
    text = prefix + left + planted + right + suffix

    result = Scrubber().scrub(text)

    assert planted not in result


def test_stack_seen_clean_before_still_loses_a_new_identifier() -> None:
    """Remembered clean lines do not let a new line with an SSN through."""
    scrubber = Scrubber()
    frames = "".join(
        f'  File "/srv/app/model.py", line {n}, in score\n    return step_{n}(x)\n'
        for n in range(40)
    )
    clean = f"Traceback (most recent call last):\n{frames}ValueError: bad row\n"
    scrubber.scrub(clean)

    result = scrubber.scrub(clean.replace("bad row", "bad row for 123-45-6789"))

    assert clean.replace("bad row", "bad row for [REDACTED:SSN]") == result
