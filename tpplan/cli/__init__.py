"""The command line: typer commands that parse the edge, call plan/check/calibration and render. No math.

Importing any of its modules first sets the process-wide switches below (before typer, pydantic and numpy
load); ``app.py`` assembles the commands of the ``*_cmds`` modules into the ``tpplan`` application."""

import os
import sys
from typing import Any

# pydantic scans every installed distribution's entry points for plugins when the first model class is
# built (importlib.metadata, ~20 ms); tpplan uses none. Set before tpplan.catalog.spec builds its models.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# numpy's OpenBLAS starts a spinning thread per core at import (~0.1 s of CPU on a 2-core machine, competing
# with the main thread); tpplan's arrays are element-wise and never call BLAS. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _skip_pydantic_plugin_loader() -> None:
    """With plugins disabled, pydantic's plugin loader still imports importlib.metadata at module level
    (email, zipfile, csv: ~20 ms, 5% of a recommend run) only to return no plugins. Stand in for that module
    with one whose ``get_plugins`` returns none, as the real one does when disabled; any other name is
    taken from the real module, loaded on first use."""
    name = "pydantic.plugin._loader"
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in ("__all__", "1", "true") or name in sys.modules:
        return
    import types

    stub = types.ModuleType(name)

    def get_plugins() -> tuple[()]:
        return ()

    def __getattr__(attr: str) -> Any:  # pragma: no cover - a newer pydantic asking for more
        if attr.startswith("__"):  # import machinery probing (__path__, __file__): not a package
            raise AttributeError(attr)
        import importlib.util
        from importlib.machinery import PathFinder

        import pydantic.plugin

        spec = PathFinder.find_spec(name.rpartition(".")[2], list(pydantic.plugin.__path__))
        if spec is None or spec.loader is None:
            raise AttributeError(attr)
        real = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(real)
        return getattr(real, attr)

    stub.get_plugins = get_plugins  # type: ignore[attr-defined]
    stub.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = stub


_skip_pydantic_plugin_loader()
