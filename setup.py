# SPDX-License-Identifier: AGPL-3.0-or-later
"""Build the one compiled module, voltdb_py._engine, from engine/ (Cython) and csrc/ (C)."""
import os
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("VOLTDB_PY_DEBUG") == "1"
ANNOTATE = os.environ.get("VOLTDB_PY_ANNOTATE") == "1"

if DEBUG:
    extra_compile_args = ["-O0", "-g3", "-UNDEBUG"]
    define_macros = [("VDB_DEBUG", "1"), ("CYTHON_TRACE_NOGIL", "1")]
else:
    extra_compile_args = ["-O2", "-Wall", "-Wno-unused-function", "-Wno-unreachable-code"]
    define_macros = []

ext = Extension(
    "voltdb_py._engine",
    sources=["engine/_engine.pyx", *sorted(glob("csrc/*.c"))],
    include_dirs=["csrc"],
    depends=sorted(glob("csrc/*.h") + glob("engine/*.pxi") + glob("engine/*.pxd")),
    extra_compile_args=extra_compile_args,
    define_macros=define_macros,
)

directives = {"language_level": "3", "embedsignature": True}
if DEBUG:
    directives["linetrace"] = True

setup(
    ext_modules=cythonize(
        [ext],
        include_path=["engine"],
        compiler_directives=directives,
        annotate=ANNOTATE,
        force=DEBUG,
    )
)
