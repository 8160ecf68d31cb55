"""Shared fixtures: the bundled catalog and an in-process CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpplan.catalog.load import get_catalog
from tpplan.cli.app import run

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


@pytest.fixture
def apply_hint():
    """A command's arguments with one relax hint applied: the hint's own words name each option and its
    value ("raise --max-gpus to 4", "relax --tpot-slo to 10.1 ms", "use --kv-dtype fp8")."""
    import re

    def _apply(args: list[str], hint: str) -> list[str]:
        out = list(args)
        for flag, value in re.findall(r"(--[a-z-]+)(?: to)? ([0-9][0-9.,]*(?: ms| s| us)?|fp8)", hint):
            value = value.replace(",", "").replace(" ", "")
            if flag in out:
                out[out.index(flag) + 1] = value
            else:
                out += [flag, value]
        assert out != args, hint
        return out

    return _apply
