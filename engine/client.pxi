# SPDX-License-Identifier: AGPL-3.0-or-later
# Included by _engine.pyx after wire.pxi: the client's per-call work, compiled.
#
# A pipelined client spends most of its CPU per call on three things besides the event
# loop: finding the partition leader's connection, encoding the invocation and matching
# each answer to its call. Each is one C call here (voltdb_py.client._async uses them).

cdef inline int64_t _cr_null_of(int vtype) noexcept:
    """The NULL sentinel of an integer column type (its minimum)."""
    if vtype == _T_TINYINT:
        return -128
    if vtype == _T_SMALLINT:
        return -32768
    if vtype == _T_INTEGER:
        return -2147483648
    return INT64_MIN


cdef class CallRouter:
    """Routes a client's calls to their partitions' leaders and encodes them.

    ``procedures`` maps a procedure name to ``(single_partition, partition_parameter,
    partition_type)`` as @SystemCatalog PROCEDURES gives them; ``hashinator`` is the ring
    (a Hashinator) or None; ``set_targets`` says where each partition's calls go (a
    connection, say). ``fallback(hashinator, type, value)`` gives the partition of a value
    that is not a plain int of an integer type (the coercing
    ``voltdb_py.hashinator.partition_for_parameter``); when it raises VoltError, TypeError,
    ValueError or OverflowError the call has no partition and goes round-robin.
    """

    cdef public dict procedures
    cdef public Hashinator hashinator   # None, or a Hashinator (checked when set)
    cdef dict _targets
    cdef object _fallback
    cdef readonly int mp_partition

    def __init__(self, fallback, int mp_partition=16383):
        self.procedures = {}
        self.hashinator = None
        self._targets = {}
        self._fallback = fallback
        self.mp_partition = mp_partition

    def set_targets(self, dict targets not None):
        """Where each partition's calls go: partition id -> target (a copy is kept)."""
        self._targets = dict(targets)

    @property
    def targets(self):
        return dict(self._targets)

    cdef object _partition(self, str procedure, object params):
        """The partition id of a call (a Python int), or None for round-robin."""
        cdef int64_t x
        cdef int ptype
        cdef Py_ssize_t pidx
        info = self.procedures.get(procedure)
        if info is None:
            return None
        single, pidx_o, ptype_o = <tuple>info
        if not single:
            return self.mp_partition
        hz = self.hashinator
        pidx = pidx_o
        if hz is None or pidx < 0 or pidx >= len(params):
            return None
        ptype = ptype_o
        v = params[pidx]
        if type(v) is int and _hz_is_int_type(ptype):
            try:
                x = <int64_t>v
            except OverflowError:
                return None  # no such value of the column: the server will say so
            if x == _cr_null_of(ptype):
                return 0
            return self.hashinator._lookup(vdb_murmur3_token_int64(x))
        try:
            return self._fallback(hz, ptype, v)
        except (VoltError, TypeError, ValueError, OverflowError):
            return None

    def partition(self, str procedure, params):
        """The partition of a call: its id, mp_partition for a multi-partition procedure,
        or None when it goes round-robin (unknown or system procedure, no ring, or a
        partitioning value that does not hash)."""
        return self._partition(procedure, params)

    def route(self, str procedure, params):
        """The target of a call's partition, or None (round-robin)."""
        pid = self._partition(procedure, params)
        if pid is None:
            return None
        return self._targets.get(pid)

    def submit(self, client, str procedure, params, int64_t handle, double deadline):
        """AsyncClient's common call in one C call; returns the call's future.

        Encodes the invocation (an encoding error raises before anything is changed),
        picks the partition leader's connection (or, when there is none or it is not
        alive, ``client._round_robin()``), registers ``(future, deadline)`` under handle in
        the connection's ``pending`` dict, counts the call in ``client._in_flight`` and
        the connection's ``affinity_calls``, and queues the frame in the connection's
        ``out`` list, scheduling ``conn._flush`` on ``client._loop`` unless one is due
        (``conn.flush_scheduled``). These are the attributes voltdb_py.client._async's
        AsyncClient and _Conn define.
        """
        frame = _wire_encode_invocation(procedure, handle, params, None, None)
        pid = self._partition(procedure, params)
        conn = None if pid is None else self._targets.get(pid)
        if conn is not None and conn.alive:
            conn.affinity_calls += 1
        else:
            conn = client._round_robin()
        loop = client._loop
        fut = loop.create_future()
        (<dict?>conn.pending)[handle] = (fut, deadline)
        client._in_flight += 1
        (<list?>conn.out).append(frame)
        if not conn.flush_scheduled:
            conn.flush_scheduled = True
            loop.call_soon(conn._flush)
        return fut


def answer_frames(buf, dict pending not None, list done not None,
                  Py_ssize_t max_frame_bytes=DEFAULT_MAX_FRAME_BYTES):
    """Decode every complete response frame in buf and match it to its call.

    For a frame whose client handle is a key of pending, the entry is popped and
    ``(entry, ClientResponse)`` appended to done; other frames (server pushes, answers to
    calls that timed out) are returned as ``(handle, ClientResponse)`` pairs. Returns
    ``(others, consumed, error)`` as decode_response_frames does: a body that does not
    decode stops the scan with its CodecError (what came before it is kept); a bad frame
    length raises CodecError.
    """
    return _wire_response_frames(buf, max_frame_bytes, True, pending, done)
