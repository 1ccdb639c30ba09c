# SPDX-License-Identifier: AGPL-3.0-or-later
"""python -m voltdb_py: the voltdb-py command."""

import sys

from voltdb_py.cli import main

sys.exit(main())
