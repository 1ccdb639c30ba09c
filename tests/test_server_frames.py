# SPDX-License-Identifier: AGPL-3.0-or-later
"""NodeServer.execute_frames: batches of invocations in, response frames out, in order."""

from __future__ import annotations

from voltdb_py import wire
from voltdb_py.deployment import default_deployment
from voltdb_py.node.server import NodeServer
from voltdb_py.types import ClientResponse, Column, Status, VoltTable, VoltType


_V = [Column("V", VoltType.BIGINT)]


class _Db:
    """Answers Echo with its parameter (as run_many gives a compiled point call's result,
    (columns, rows)), Echo2 the same as a ClientResponse, and Bad with a result the codec
    cannot encode."""

    def __init__(self) -> None:
        self.batches: list[list] = []

    @staticmethod
    def _answer(proc: str, params: tuple) -> ClientResponse | tuple:
        if proc == "Bad":
            return ClientResponse(Status.SUCCESS, None, -128, None, [object()])
        if proc == "Echo":
            return (_V, [(params[0],)])
        return ClientResponse(Status.SUCCESS, None, -128, None, [VoltTable(_V, [(params[0],)])])

    def run_many(self, calls):
        # as Database.run_many: (procedure, params, ...) entries, items after two ignored
        self.batches.append([(c[0], c[1]) for c in calls])
        return [self._answer(c[0], tuple(c[1])) for c in calls]

    def call(self, proc, *params):
        r = self._answer(proc, params)
        return ClientResponse(Status.SUCCESS, None, -128, None, [VoltTable(*r)]) \
            if type(r) is tuple else r


class _Conn:
    admin = False
    closed = False

    def abort(self, why: str) -> None:
        self.closed = True


def _run(bodies: list[bytes]) -> tuple[_Db, list[tuple[int, ClientResponse]]]:
    db = _Db()
    node = NodeServer(db, default_deployment(), None)  # type: ignore[arg-type]
    chunks = node.execute_frames(_Conn(), bodies)  # type: ignore[arg-type]
    pairs, used, err = wire.decode_response_frames(b"".join(chunks))
    assert err is None and used == sum(map(len, chunks))
    return db, pairs


def _inv(proc: str, handle: int, *params) -> bytes:
    return wire.encode_invocation(proc, handle, params)[4:]


def test_group_answers_in_order_with_one_commit_group():
    db, pairs = _run([_inv("Echo" if h % 2 else "Echo2", h, h * 10) for h in range(1, 6)])
    assert [h for h, _r in pairs] == [1, 2, 3, 4, 5]
    assert all(r.status == 1 and r.status_string is None and r.app_status == -128
               and r.tables[0].columns == _V for _h, r in pairs)
    assert [r.tables[0].rows for _h, r in pairs] == [[(h * 10,)] for h in range(1, 6)]
    assert len(db.batches) == 1


def test_unencodable_answer_fails_only_its_own_call():
    db, pairs = _run([_inv("Echo", 1, 7), _inv("Bad", 2, 0), _inv("Echo", 3, 9),
                      _inv("@Ping", 4), _inv("Echo", 5, 11)])
    assert [h for h, _r in pairs] == [1, 2, 3, 4, 5]
    status = {h: r.status for h, r in pairs}
    assert status == {1: 1, 2: Status.UNEXPECTED_FAILURE, 3: 1, 4: 1, 5: 1}
    assert "the result of Bad cannot be serialized" in pairs[1][1].status_string
    assert pairs[2][1].tables[0].rows == [(9,)] and pairs[4][1].tables[0].rows == [(11,)]
    assert len(db.batches) == 2   # @Ping splits the group


def test_malformed_invocation_is_answered_between_groups():
    bad = bytearray(_inv("Echo", 2, 5))
    bad[-9] = 77  # the parameter's type byte: no such type
    _db, pairs = _run([_inv("Echo", 1, 1), bytes(bad), _inv("Echo", 3, 3)])
    assert [h for h, _r in pairs] == [1, 2, 3]
    assert pairs[1][1].status == Status.UNEXPECTED_FAILURE
    assert "Malformed invocation" in pairs[1][1].status_string
