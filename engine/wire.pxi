# SPDX-License-Identifier: AGPL-3.0-or-later
# VoltDB client wire protocol: compiled (de)serialization.
