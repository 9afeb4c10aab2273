"""Fixtures shared by every test package."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest


@pytest.fixture
def binary() -> Callable[[str], str]:
    """Return a function giving the path of a required executable.

    A missing executable fails the test: the test command installs Prometheus and
    Alertmanager first, so a skip would only hide a broken setup.
    """

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.fail(
                f"{name} is not on PATH; install Debian's prometheus and "
                "prometheus-alertmanager packages (`make system-deps`)"
            )
        return path

    return find
