# SPDX-License-Identifier: AGPL-3.0-or-later
# Included by _engine.pyx after wire.pxi: a cluster host's per-call work, compiled.
#
# A cluster host (voltdb_py.node.cluster) spends CPU per call on decoding it, finding its
# partition and leader, and queueing it for the next group commit. For the common call
# (a user procedure partitioned on an integer, led by this host) that is one C loop here;
# every other call is left to the general path in Python.


cdef class ClusterCall:
    """A single-partition call waiting for, or running on, its leader.

    Its answer goes to ``reply`` (the response frame with handle 0), or, without one, to
    client connection ``conn`` under ``handle``: a client's call on its leader's host costs
    no closures. When the partition moves away before it runs, ``moved(why)`` is called,
    or, without one, the call is routed again (``attempt`` counts the tries).
    """

    cdef public int pid
    cdef public object proc
    cdef public object params
    cdef public object dest
    cdef public bint read_only
    cdef public object reply
    cdef public object moved
    cdef public object conn
    cdef public int64_t handle
    cdef public int attempt

    def __init__(self, int pid, proc, params, dest, bint read_only, reply, moved=None,
                 conn=None, int64_t handle=0):
        self.pid = pid
        self.proc = proc
        self.params = params
        self.dest = dest
        self.read_only = read_only
        self.reply = reply
        self.moved = moved
        self.conn = conn
        self.handle = handle
        self.attempt = 0

    def __repr__(self):
        return (f"ClusterCall(pid={self.pid}, proc={self.proc!r}, handle={self.handle}, "
                f"read_only={self.read_only}, attempt={self.attempt})")


cdef inline bint _ci_leads(object parts, int pid, int host_id) except -1:
    part = parts.get(pid)
    if part is None:
        return False
    leader = part.leader
    return type(leader) is int and <long>leader == host_id


def cluster_intake(conn, list bodies not None, Py_ssize_t start, list batch not None,
                   dict procs not None, hashinator, parts, int host_id):
    """Queue the common calls of ``bodies[start:]`` in ``batch``, in order.

    A call is taken when it decodes, has no extensions, names a user procedure of procs
    (name -> the database's procedure runtime) partitioned on an integer parameter whose
    value is a plain int in the column's range, and its partition (by hashinator, an
    engine Hashinator) is led by host_id according to parts (a mapping of partition id
    -> an object with ``leader``). It becomes a ClusterCall for conn under the call's handle.

    Stops at the first body it does not take and returns ``(index, decoded)``: decoded is
    ``(procedure, handle, params, extensions)``, or None when the body did not decode (the
    general path decodes it again and reports why). Returns ``(len(bodies), None)`` when
    every body was taken.
    """
    cdef Py_ssize_t i, n = len(bodies), pidx
    cdef int pid, ptype
    cdef ClusterCall call
    cdef Hashinator hz = hashinator if type(hashinator) is Hashinator else None
    cdef tuple params
    for i in range(start, n):
        try:
            decoded = _wire_decode_invocation(bodies[i])
        except CodecError:
            return i, None
        proc = <object>PyTuple_GET_ITEM(decoded, 0)
        params = <tuple>PyTuple_GET_ITEM(decoded, 2)
        if hz is None or <dict>PyTuple_GET_ITEM(decoded, 3):
            return i, decoded
        rt = procs.get(proc)
        if rt is None:
            return i, decoded
        ptype = rt.part_int
        pidx = rt.part_index
        if ptype < 0 or pidx < 0 or pidx >= PyTuple_GET_SIZE(params):
            return i, decoded
        v = <object>PyTuple_GET_ITEM(params, pidx)
        if type(v) is not int or not (rt.part_lo <= v <= rt.part_hi):
            return i, decoded
        pid = 0 if _hz_is_null(ptype, v) else hz._lookup(_token_for(ptype, v))
        if not _ci_leads(parts, pid, host_id):
            return i, decoded
        call = ClusterCall.__new__(ClusterCall)
        call.pid = pid
        call.proc = proc
        call.params = params
        call.dest = None
        call.read_only = rt.read_only
        call.reply = None
        call.moved = None
        call.conn = conn
        call.handle = <int64_t>(<object>PyTuple_GET_ITEM(decoded, 1))
        call.attempt = 0
        batch.append(call)
    return n, None
