"""``python benchmarks/http.py``: the HTTP load benchmark the issue names (``serve_http.py``).

A file called ``http.py`` beside the other benchmark scripts is the first ``http`` on their
``sys.path``, so ``import http.client`` (urllib, httpx...) would find it instead of the standard
library. Run as a script, it runs ``serve_http.main``; imported, it loads the standard library's
``http`` package and puts that in its own place, so nothing else is shadowed.
"""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path


def _standard_http() -> None:
    package = Path(sysconfig.get_paths()["stdlib"]) / "http"
    spec = importlib.util.spec_from_file_location(
        "http", package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["http"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    _standard_http()  # serve_http's own imports need the real package
    from serve_http import main

    main()
else:
    _standard_http()
