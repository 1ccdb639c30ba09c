# SPDX-License-Identifier: AGPL-3.0-or-later
"""The only importer of the compiled core; a missing build is a clear ImportError."""

try:
    from voltdb_py import _engine
except ImportError as exc:  # pragma: no cover - depends on the build
    raise ImportError(
        "voltdb_py's compiled core (voltdb_py._engine) is not built or does not import: "
        f"{exc}. Install the package with 'pip install .' (a C compiler is needed)."
    ) from exc

__all__ = ["_engine"]
