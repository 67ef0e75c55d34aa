"""Row hashes of Arrow columns, equal bit for bit to ``pd.util.hash_pandas_object(frame, index=False)``,
and the event keys built from them (``event_key_base``, ``event_keys``: a row's identity in the store).

Event keys are stored, so their hash must never change. pandas computes it as
SipHash-2-4 of each text's UTF-8 bytes (key "0123456789123456"), numbers by their bits (floats with
NaN and -0.0 made canonical), datetimes by their integer ticks, each then spread by splitmix64's
finaliser, and the columns combined as in CPython's tuple hash; a null text hashes to 2**64 - 1.
This module computes the same with NumPy on the Arrow buffers: no Python object per value (the
pandas path makes one for each distinct text, about 3 s of an ingest's 20 M rows), mostly without
the GIL, and the stored keys no longer depend on pandas' version. tests/ingest/test_rowhash.py checks
it against pandas on every column type of RAW_SCHEMA. A type it does not know goes through pandas.

    python -c "import pyarrow as pa; from pipeline.ingest.rowhash import hash_rows; print(hash_rows(pa.table({'a': ['x', None]})))"
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_K0, _K1 = (int(k) for k in np.frombuffer(b"0123456789123456", "<u8"))  # pandas' default hash_key
_NULL = np.uint64(2**64 - 1)


def hash_rows(table: pa.Table, columns_out: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """uint64 hash of each row over every column of ``table``, in column order; ``columns_out``, when
    given, receives each column's own hashes by name (pandas' hash of that column alone; a null text is
    2**64 - 1), which the ingest statistics count distinct values with (pipeline.ingest.tally)."""
    columns = [_column(table.column(i)) for i in range(table.num_columns)]
    if columns_out is not None:
        columns_out.update((name, hashed) for name, hashed in zip(table.column_names, columns))
    if not columns:
        return np.empty(0, dtype=np.uint64)
    out = np.full(table.num_rows, 0x345678, dtype=np.uint64)
    mult = np.uint64(1000003)
    for i, hashed in enumerate(columns):  # pandas' combine_hash_arrays
        inverse = len(columns) - i
        out ^= hashed
        out *= mult
        mult += np.uint64(82520 + inverse + inverse)
    return out + np.uint64(97531)


def _column(values: pa.ChunkedArray) -> np.ndarray:
    kind = values.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text(values)
    if pa.types.is_floating(kind) and kind.bit_width == 64 and values.null_count == 0:
        floats = values.to_numpy()
        bits = floats.view(np.uint64).copy()
        bits[np.isnan(floats)] = np.array(np.nan).view(np.uint64)
        bits[bits == np.array(-0.0).view(np.uint64)] = 0
        return splitmix(bits)
    if pa.types.is_int64(kind) and values.null_count == 0:
        return splitmix(values.to_numpy().view(np.uint64).copy())
    if pa.types.is_timestamp(kind) and values.null_count == 0:
        return splitmix(values.cast(pa.int64()).to_numpy().view(np.uint64).copy())
    return pd.util.hash_pandas_object(values.to_pandas(), index=False).to_numpy()  # as pandas reads it


def _text(values: pa.ChunkedArray) -> np.ndarray:
    """Texts hashed once per run of equal neighbours (an order's lines share its id: 4x fewer hashes
    than rows, and no hash table); else, when a sample of them repeats, once per distinct value, as
    pandas does; else (nearly every text distinct: the order ids of a log in no order) each one, as
    building the table of distinct values would cost more than it saves."""
    values = values.combine_chunks()
    n = len(values)
    if n > 1 and _may_run(values):
        changed = pc.fill_null(pc.not_equal(values.slice(1), values.slice(0, n - 1)), True)
        starts = np.flatnonzero(np.r_[True, changed.to_numpy(zero_copy_only=False)])
        if 2 * len(starts) <= n:
            out = np.repeat(splitmix(_siphash(values.take(starts))), np.diff(np.r_[starts, n]))
            return _nulls(out, values)
    if _nearly_distinct(values):
        return _nulls(splitmix(_siphash(values)), values)
    encoded = pc.dictionary_encode(values)
    hashed = splitmix(_siphash(encoded.dictionary))
    out = hashed[encoded.indices.fill_null(0).to_numpy()] if len(hashed) else np.zeros(n, np.uint64)
    return _nulls(out, values)


_SAMPLE = 2048  # texts whose distinct count tells a column of (nearly) unique values from one that repeats


def _may_run(values: pa.Array) -> bool:
    """Whether runs of equal neighbours may cover half the texts: a third of ``_SAMPLE`` neighbours spread
    over the column are equal at least (a short column: yes). Comparing every neighbour costs about 2 ms
    a 400,000-row column; the ids of a log in no order, and the items of a log in time order, have no runs."""
    if len(values) <= _SAMPLE:
        return True
    at = np.linspace(0, len(values) - 2, _SAMPLE).astype(np.int64)
    equal = pc.equal(values.take(at), values.take(at + 1))
    return 3 * pc.sum(equal.fill_null(False)).as_py() >= _SAMPLE


def _nearly_distinct(values: pa.Array) -> bool:
    """Whether over 90 % of ``_SAMPLE`` texts spread over the column differ (a short column: no)."""
    if len(values) <= _SAMPLE:
        return False
    sample = values.take(np.linspace(0, len(values) - 1, _SAMPLE).astype(np.int64))
    return pc.count_distinct(sample).as_py() > 0.9 * _SAMPLE


def _nulls(hashed: np.ndarray, values: pa.Array) -> np.ndarray:
    if values.null_count:
        hashed[values.is_null().to_numpy(zero_copy_only=False)] = _NULL
    return hashed


def _siphash(texts: pa.Array) -> np.ndarray:
    """SipHash-2-4 of each text's UTF-8 bytes, lane by lane over the Arrow offsets and data, ``_LANES``
    texts at a time: the state of a slice of lanes stays in the CPU's cache, and every step works in
    place (no temporary array per operation)."""
    _, offsets_buf, data_buf = texts.buffers()
    width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    offsets = np.frombuffer(offsets_buf, width)[texts.offset:texts.offset + len(texts) + 1].astype(np.int64)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    data = np.concatenate([data[:offsets[-1]], np.zeros(8, np.uint8)])  # reads past a text's end stay inside
    words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))  # the 8 bytes from each byte
    out = np.empty(len(texts), np.uint64)
    for lo in range(0, len(texts), _LANES):
        hi = min(len(texts), lo + _LANES)
        out[lo:hi] = _lanes(words, offsets[lo:hi], offsets[lo + 1:hi + 1] - offsets[lo:hi])
    return out


_LANES = 1 << 13  # texts hashed together: five 64 KiB arrays of state, well inside a core's L2 cache


def _lanes(words: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """SipHash-2-4 of the texts at ``start`` of ``length`` bytes."""
    n = len(start)
    state = [np.full(n, _K0 ^ 0x736F6D6570736575, np.uint64), np.full(n, _K1 ^ 0x646F72616E646F6D, np.uint64),
             np.full(n, _K0 ^ 0x6C7967656E657261, np.uint64), np.full(n, _K1 ^ 0x7465646279746573, np.uint64)]
    scratch = np.empty(n, np.uint64)
    blocks = length // 8
    for b in range(int(blocks.max()) if n else 0):  # whole 8-byte words, only texts that have them
        lanes = np.flatnonzero(blocks > b)
        if len(lanes) == n:
            _compress(state, words[start + 8 * b], scratch)
        else:  # the longer texts only: their state apart, then back
            part = [v[lanes] for v in state]
            _compress(part, words[start[lanes] + 8 * b], np.empty(len(lanes), np.uint64))
            for v, p in zip(state, part):
                v[lanes] = p
    tail_bits = (length % 8 * 8).astype(np.uint64)  # 0-56: the last word's bytes that are the text's
    word = words[start + 8 * blocks] & ((np.uint64(1) << tail_bits) - np.uint64(1))
    word |= (length.astype(np.uint64) & np.uint64(0xFF)) << np.uint64(56)
    _compress(state, word, scratch)
    state[2] ^= np.uint64(0xFF)
    for _ in range(4):
        _round(state, scratch)
    v0, v1, v2, v3 = state
    v0 ^= v1
    v0 ^= v2
    v0 ^= v3
    return v0


def _compress(state: list[np.ndarray], word: np.ndarray, scratch: np.ndarray) -> None:
    state[3] ^= word
    _round(state, scratch)
    _round(state, scratch)
    state[0] ^= word


def _round(state: list[np.ndarray], t: np.ndarray) -> None:
    """One SipRound, in place (``t``: scratch of the same length)."""
    v0, v1, v2, v3 = state
    v0 += v1
    _rotl(v1, 13, t)
    v1 ^= v0
    _rotl(v0, 32, t)
    v2 += v3
    _rotl(v3, 16, t)
    v3 ^= v2
    v0 += v3
    _rotl(v3, 21, t)
    v3 ^= v0
    v2 += v1
    _rotl(v1, 17, t)
    v1 ^= v2
    _rotl(v2, 32, t)


def _rotl(x: np.ndarray, bits: int, t: np.ndarray) -> None:
    np.right_shift(x, np.uint64(64 - bits), out=t)
    np.left_shift(x, np.uint64(bits), out=x)
    x |= t


def splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (in place): pandas applies it after hashing, and event keys mix the
    occurrence number in with it (``event_keys``)."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def event_key_base(events: pa.Table, fields: tuple[str, ...],
                   columns_out: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """A 64-bit hash of each row's ``fields`` of a RAW_SCHEMA table (pandas' ``hash_pandas_object`` of
    those columns, ``hash_rows``); ``columns_out`` receives each field's own hashes."""
    return hash_rows(events.select(list(fields)), columns_out)


def event_keys(base: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """The event key of each row: its field hash ``base`` plus its occurrence number among equal rows.

    Identical rows are legitimate repeats (the bakery logs an item bought twice as two rows), so the
    n-th copy gets key (fields, n): a file that repeats what the store holds adds nothing, and one
    with a third copy where the store has two adds exactly one. Occurrences are counted within one
    date partition of one drop (rows with equal event_time always share a partition): ``prior`` holds
    the sorted field hashes of that day in the drop's earlier files, whose copies count first.
    """
    occurrence = np.zeros(len(base), dtype=np.uint64)
    if prior is not None and len(prior):
        occurrence += (np.searchsorted(prior, base, "right") - np.searchsorted(prior, base, "left")).astype(np.uint64)
    # most rows are unique: only the repeated ones (found with a hash table) need the stable ranking; a
    # sort tells first whether there is any (0.18 ms for a day of 27,000 rows, the hash table 0.33)
    sorted_base = np.sort(base)
    repeated = np.flatnonzero(pd.Series(base, copy=False).duplicated(keep=False).to_numpy()) \
        if (sorted_base[1:] == sorted_base[:-1]).any() else ()
    if len(repeated):
        some = base[repeated]
        order = np.argsort(some, kind="stable")
        ranked = some[order]
        starts = np.r_[True, ranked[1:] != ranked[:-1]]
        first = np.maximum.accumulate(np.where(starts, np.arange(len(ranked)), 0))
        occurrence[repeated[order]] += (np.arange(len(ranked)) - first).astype(np.uint64)
    return splitmix(base ^ splitmix(occurrence + np.uint64(1)))  # stored keys depend on it never changing
