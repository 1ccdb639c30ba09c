# SPDX-License-Identifier: AGPL-3.0-or-later
# Included by _engine.pyx after wire.pxi: a one-host server's per-call work, compiled.
#
# A server (voltdb_py.node.server) decodes a connection's invocations, runs the plain
# calls of user procedures as one group (Database.run_many) and writes their answers with
# one write. The decoding loop and the encoding of a group's answers are one C call each
# here; system procedures, extensions and frames that do not decode take the general path.


def server_intake(list bodies not None, Py_ssize_t start, list calls not None):
    """Append ``(procedure, params, handle)`` to calls for each body of ``bodies[start:]``
    that decodes as a plain call of a user procedure: no extensions, and a name that does
    not start with "@".

    Stops at the first other body and returns ``(index, decoded)``: decoded is
    ``(procedure, handle, params, extensions)``, or None when the body does not decode (the
    general path decodes it again and reports why). Returns ``(len(bodies), None)`` when
    every body was taken.
    """
    cdef Py_ssize_t i, n = len(bodies)
    for i in range(start, n):
        try:
            decoded = _wire_decode_invocation(bodies[i])
        except CodecError:
            return i, None
        proc = <object>PyTuple_GET_ITEM(decoded, 0)
        if <dict>PyTuple_GET_ITEM(decoded, 3) or type(proc) is not str \
                or (<str>proc).startswith("@"):
            return i, decoded
        calls.append((proc, <object>PyTuple_GET_ITEM(decoded, 2),
                      <object>PyTuple_GET_ITEM(decoded, 1)))
    return n, None


def encode_call_answers(list calls not None, list results not None,
                        int32_t cluster_rtt_ms=0):
    """The response frames of calls (``(procedure, params, handle)``, as server_intake
    makes them) answered by results (Database.run_many's: a ClientResponse or a
    ``(columns, rows)`` success), concatenated in order in one bytes.

    A result that cannot be encoded becomes an UNEXPECTED_FAILURE frame naming the
    procedure and saying why; the others are unaffected. Calls and results of different
    lengths raise ValueError.
    """
    cdef _wire_out w
    cdef Py_ssize_t i, n = len(calls)
    cdef tuple call
    if len(results) != n:
        raise ValueError(f"{n} calls for {len(results)} results")
    _wire_out_init(&w, 160 * n + 64)
    try:
        for i in range(n):
            call = <tuple?>calls[i]
            _wire_put_answer(&w, call[2], results[i], cluster_rtt_ms, call[0])
        return _wire_out_bytes(&w)
    finally:
        free(w.p)
