# SPDX-License-Identifier: AGPL-3.0-or-later
PYTHON ?= python3
CC ?= cc

.PHONY: build debug annotate test test-all bench csrc-check sdist-check clean

build:
	$(PYTHON) -m pip install -q 'setuptools>=77' wheel 'Cython>=3.0,<4'
	$(PYTHON) -m pip install --no-build-isolation -e '.[test,bench]'

debug:
	VOLTDB_PY_DEBUG=1 $(PYTHON) -m pip install --no-build-isolation -e '.[test,bench]'

annotate:
	VOLTDB_PY_ANNOTATE=1 $(PYTHON) setup.py build_ext --inplace

test:
	$(PYTHON) -m pytest

test-all:
	$(PYTHON) -m pytest -m ""

bench:
	$(PYTHON) -m pytest benchmarks -o python_files='bench_*.py' -m bench --benchmark-only -p no:cacheprovider

csrc-check:
	$(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror -fsanitize=address,undefined -Icsrc \
	    csrc/*.c csrc/tests/test_csrc.c -o csrc/tests/test_csrc && ./csrc/tests/test_csrc

sdist-check:
	rm -rf dist && $(PYTHON) -m build --sdist --outdir dist . && \
	$(PYTHON) -m pip wheel --no-deps -w dist dist/*.tar.gz

clean:
	rm -rf build dist engine/*.c engine/*.html python/voltdb_py/*.so csrc/tests/test_csrc
