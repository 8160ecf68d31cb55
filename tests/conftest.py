"""Shared fixtures: the bundled catalog and an in-process CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpplan.catalog import get_catalog
from tpplan.cli import run

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def cat():
    return get_catalog()


@pytest.fixture
def cli(capsys):
    """Run tpplan in-process: returns (exit code, stdout, stderr)."""

    def _run(*args: str):
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


@pytest.fixture
def cli_json(cli):
    def _run(*args: str):
        code, out, err = cli(*args, "--format", "json")
        assert code in (0, 1), err
        return code, json.loads(out)

    return _run
