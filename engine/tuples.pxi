# SPDX-License-Identifier: AGPL-3.0-or-later
# Row and key codecs (TupleSchema).
