# SPDX-License-Identifier: AGPL-3.0-or-later
"""The catalog: schema model, DDL compiler and (de)serialization."""

from voltdb_py.catalog.model import Catalog, Column, Index, Procedure, Table, ViewDef

__all__ = ["Catalog", "Column", "Index", "Procedure", "Table", "ViewDef"]
