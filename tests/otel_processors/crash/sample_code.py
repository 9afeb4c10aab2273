"""Code that fails in known ways, for the grouping tests (line numbers matter)."""

from __future__ import annotations

import json
from collections.abc import Callable


def load_record(patient_id: int, payload: str) -> object:
    return json.loads(payload)


def lookup(patient_id: int) -> object:
    registry: dict[int, object] = {}
    return registry[patient_id]


def recurse(depth: int, patient_id: int) -> object:
    if depth == 0:
        return lookup(patient_id)
    return recurse(depth - 1, patient_id)


def via_handler(patient_id: int) -> object:
    return lookup(patient_id)


def via_batch(patient_id: int) -> object:
    return lookup(patient_id)


def wrapped(patient_id: int) -> object:
    try:
        return lookup(patient_id)
    except KeyError as exc:
        raise RuntimeError(f"cannot score patient {patient_id}") from exc


def ping(depth: int, patient_id: int, leaf: Callable[[int], object]) -> object:
    if depth == 0:
        return leaf(patient_id)
    return pong(depth, patient_id, leaf)


def pong(depth: int, patient_id: int, leaf: Callable[[int], object]) -> object:
    return ping(depth - 1, patient_id, leaf)
