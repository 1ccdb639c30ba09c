# SPDX-License-Identifier: AGPL-3.0-or-later
"""The voter example's stored procedures as Python classes (VoltDB's voter.* names).

Load with ``db.load_classes("examples/voter/voter.py")`` (or sqlcmd's LOAD CLASSES) before
the DDL in ddl.sql, which declares them with CREATE PROCEDURE ... FROM CLASS voter.<Name>.
"""

from voltdb_py import Column, SQLStmt, VoltProcedure, VoltTable, VoltType

# Area code -> state, a sample of North American area codes (enough for the demo: numbers
# whose area code is not listed vote from the placeholder state "XX", as upstream does).
AREA_CODES = {
    201: "NJ", 202: "DC", 203: "CT", 205: "AL", 206: "WA", 207: "ME", 208: "ID", 212: "NY",
    213: "CA", 214: "TX", 215: "PA", 216: "OH", 217: "IL", 301: "MD", 302: "DE", 303: "CO",
    304: "WV", 305: "FL", 307: "WY", 312: "IL", 313: "MI", 314: "MO", 316: "KS", 317: "IN",
    401: "RI", 402: "NE", 404: "GA", 405: "OK", 406: "MT", 410: "MD", 412: "PA", 414: "WI",
    415: "CA", 501: "AR", 502: "KY", 503: "OR", 504: "LA", 505: "NM", 512: "TX", 515: "IA",
    601: "MS", 602: "AZ", 603: "NH", 605: "SD", 612: "MN", 614: "OH", 615: "TN", 617: "MA",
    701: "ND", 702: "NV", 704: "NC", 718: "NY", 801: "UT", 802: "VT", 803: "SC", 804: "VA",
    808: "HI", 860: "CT", 901: "TN", 907: "AK", 919: "NC",
}


class Initialize(VoltProcedure):
    """Load contestants and area codes once; return the number of contestants."""

    count_contestants = SQLStmt("SELECT COUNT(*) FROM contestants;")
    insert_area_code = SQLStmt("INSERT INTO area_code_state VALUES (?, ?);")
    insert_contestant = SQLStmt(
        "INSERT INTO contestants (contestant_name, contestant_number) VALUES (?, ?);")

    def run(self, max_contestant: int, contestants: str):
        self.queue_sql(self.count_contestants)
        existing = self.execute_sql()[0].scalar()
        if existing == 0:
            names = contestants.split(",")
            for i in range(max_contestant):
                self.queue_sql(self.insert_contestant, names[i], i + 1)
            self.execute_sql()
            for code, state in AREA_CODES.items():
                self.queue_sql(self.insert_area_code, code, state)
            self.execute_sql()
            count = max_contestant
        else:
            count = existing
        return VoltTable([Column("numContestants", VoltType.INTEGER)], [(count,)])


class Vote(VoltProcedure):
    """Record one vote; 0 = accepted, 1 = unknown contestant, 2 = voter over the limit."""

    VOTE_SUCCESSFUL = 0
    ERR_INVALID_CONTESTANT = 1
    ERR_VOTER_OVER_VOTE_LIMIT = 2

    check_contestant = SQLStmt(
        "SELECT contestant_number FROM contestants WHERE contestant_number = ?;")
    check_voter = SQLStmt("SELECT num_votes FROM v_votes_by_phone_number WHERE phone_number = ?;")
    check_state = SQLStmt("SELECT state FROM area_code_state WHERE area_code = ?;")
    insert_vote = SQLStmt(
        "INSERT INTO votes (phone_number, state, contestant_number) VALUES (?, ?, ?);")

    def run(self, phone_number: int, contestant_number: int, max_votes_per_phone_number: int):
        self.queue_sql(self.check_contestant, contestant_number,
                       expect=self.EXPECT_ZERO_OR_ONE_ROW)
        self.queue_sql(self.check_voter, phone_number, expect=self.EXPECT_ZERO_OR_ONE_ROW)
        self.queue_sql(self.check_state, phone_number // 10_000_000,
                       expect=self.EXPECT_ZERO_OR_ONE_ROW)
        contestant, voter, state = self.execute_sql()
        if not contestant.rows:
            return self.ERR_INVALID_CONTESTANT
        if voter.rows and voter.rows[0][0] >= max_votes_per_phone_number:
            return self.ERR_VOTER_OVER_VOTE_LIMIT
        state_code = state.rows[0][0] if state.rows else "XX"
        self.queue_sql(self.insert_vote, phone_number, state_code, contestant_number,
                       expect=self.EXPECT_SCALAR_MATCH, expect_value=1)
        self.execute_sql(final=True)
        return self.VOTE_SUCCESSFUL


class Results(VoltProcedure):
    """Total votes per contestant, most votes first."""

    result = SQLStmt(
        "SELECT a.contestant_name AS contestant_name, a.contestant_number AS contestant_number,"
        " SUM(b.num_votes) AS total_votes"
        " FROM v_votes_by_contestant_number_state AS b, contestants AS a"
        " WHERE a.contestant_number = b.contestant_number"
        " GROUP BY a.contestant_name, a.contestant_number"
        " ORDER BY total_votes DESC, contestant_number ASC, contestant_name ASC;")

    def run(self):
        self.queue_sql(self.result)
        return self.execute_sql(final=True)


_BY_STATE = SQLStmt(
    "SELECT contestant_number, state, SUM(num_votes) AS num_votes"
    " FROM v_votes_by_contestant_number_state"
    " GROUP BY contestant_number, state ORDER BY 2 ASC, 3 DESC, 1 ASC;")


class ContestantWinningStates(VoltProcedure):
    """The states a contestant leads in, by votes, at most max rows."""

    result = _BY_STATE

    def run(self, contestant_number: int, max_rows: int):
        self.queue_sql(self.result)
        summary = self.execute_sql()[0]
        wins = []
        state = None
        for number, row_state, votes in summary.rows:
            if row_state != state:
                state = row_state
                if number == contestant_number:
                    wins.append((row_state, votes))
        wins.sort(key=lambda r: -r[1])
        return VoltTable([Column("state", VoltType.STRING), Column("num_votes", VoltType.BIGINT)],
                         wins[:max_rows])


class GetStateHeatmap(VoltProcedure):
    """Votes per state and contestant, flagging the leader of each state."""

    result = _BY_STATE

    def run(self):
        self.queue_sql(self.result)
        summary = self.execute_sql()[0]
        rows = []
        state = None
        for number, row_state, votes in summary.rows:
            winning = 1 if row_state != state else 0
            state = row_state
            rows.append((row_state, number, votes, winning))
        return VoltTable([Column("state", VoltType.STRING),
                          Column("contestant_number", VoltType.INTEGER),
                          Column("num_votes", VoltType.BIGINT),
                          Column("is_winning", VoltType.TINYINT)], rows)
