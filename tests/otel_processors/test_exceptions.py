"""Tests for the taxonomy's exception hierarchy."""

from __future__ import annotations

import inspect
import pickle

import pytest

from otel_processors import exceptions
from otel_processors.exceptions import (
    DataError,
    DependencyUnavailableError,
    HealthAIError,
    InfrastructureError,
    OutOfRangeError,
)
from otel_processors.registry import Registry
from otel_processors.taxonomy import Category, category_of

_CLASSES = [
    cls
    for _, cls in inspect.getmembers(exceptions, inspect.isclass)
    if issubclass(cls, HealthAIError)
]


def test_every_public_class_is_exported() -> None:
    """Each exception class of the module appears in ``__all__``."""
    result = sorted(cls.__name__ for cls in _CLASSES)

    assert sorted(exceptions.__all__) == result


@pytest.mark.parametrize("cls", _CLASSES, ids=lambda cls: cls.__name__)
def test_class_code_is_a_builtin_code_of_its_category(cls: type[HealthAIError]) -> None:
    """Each class carries a catalogue code whose category is the class's."""
    code = Registry.builtin().get(cls.code)

    assert code is not None
    assert cls.category == code.category
    assert cls.category == category_of(code.subcategory)


def test_leaf_classes_have_distinct_codes() -> None:
    """No two classes share a code, so a code tells the class apart."""
    codes = [cls.code for cls in _CLASSES]

    assert len(set(codes)) == len(codes)


def test_instance_code_overrides_class_code() -> None:
    """``code=`` replaces the class's code for that instance only."""
    error = OutOfRangeError("SpO2 140 %", code="ACME-DATA-014")

    expected = ("ACME-DATA-014", "HAI-DATA-301")
    assert expected == (error.code, OutOfRangeError.code)


def test_message_and_args_are_kept() -> None:
    """The exception behaves as a normal exception for its message."""
    error = DataError("age 212 out of range", 212)

    expected = ("('age 212 out of range', 212)", ("age 212 out of range", 212))
    assert expected == (
        str(error),
        error.args,
    )


def test_pickling_keeps_the_instance_code() -> None:
    """An instance's code survives pickling, as across a process pool."""
    error = DependencyUnavailableError("feature store down", code="ACME-SYS-003")

    result = pickle.loads(pickle.dumps(error))

    assert (DependencyUnavailableError, ("feature store down",), "ACME-SYS-003") == (
        type(result),
        result.args,
        result.code,
    )


def test_pickling_without_instance_code_keeps_the_class_code() -> None:
    """Without ``code=``, the unpickled exception has the class's code."""
    result = pickle.loads(pickle.dumps(DependencyUnavailableError("down")))

    expected = ("HAI-SYS-101", False)
    assert expected == (result.code, "code" in vars(result))


def test_infrastructure_error_does_not_shadow_system_error() -> None:
    """The system branch is not a subclass of the builtin ``SystemError``."""
    result = issubclass(InfrastructureError, SystemError)

    assert result is False


def test_hierarchy_mirrors_the_taxonomy_categories() -> None:
    """The four branches map to the four categories."""
    result = {
        cls.__name__: cls.category
        for cls in _CLASSES
        if cls.__bases__ == (HealthAIError,)
    }

    expected = {
        "PredictionError": Category.PREDICTION_ERROR,
        "DataError": Category.DATA_ERROR,
        "ModelError": Category.MODEL_ERROR,
        "InfrastructureError": Category.SYSTEM_ERROR,
    }
    assert expected == result
