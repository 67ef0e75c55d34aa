"""Ids (item, customer, order) as text in every format, and the ids ingest refuses.

A parquet float column, a JSON number and CSV text give the same id: 17850.0 (pandas' artefact of a
nullable integer, as a float or as the text "17850.0" a pandas-written CSV holds) is 17850, 1e20 and
2**63 stay two different customers, and "NA" is an item code, not a missing value. Only plain spaces
(U+0020) at an id's edges are stripped. An id is refused when it is an infinite number, holds a
control character (C0 or C1: NUL, tab, newline, escape, NEL U+0085...), has another Unicode space
(no-break space, U+2028...) at an edge, or is longer than ``max_id_length``.

    python -c "import pandas as pd; from pipeline.ingest.ids import as_id; print(as_id(pd.Series([1e20, 17850.0])))"
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_CONTROL = r"[\x{00}-\x{1f}\x{7f}-\x{9f}]"  # C0 and C1 control characters, NUL included (RE2 syntax)
# Unicode spaces beyond ASCII (Python's str.isspace, less the controls above), refused at an id's edge
_SPACES = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
_EDGE_SPACE = f"^[{_SPACES}]|[{_SPACES}]$"
_WHOLE_TEXT = r"^(-?[0-9]+)\.0+$"  # "17850.0": a whole number as pandas writes a float column


def as_id(values: pd.Series) -> pd.Series:
    """Ids as strings: floats like 17850.0 (a pandas artefact of nullable ints) lose their '.0'."""
    if pd.api.types.is_float_dtype(values):
        return _float_ids(values)
    if values.dtype == object:  # JSON values: each judged on its own
        return pd.Series([_id_text(v) for v in values], index=values.index, dtype="str")
    if is_arrow_text(values):  # the same result in Arrow, without pandas' masked assignment
        return pd.Series(arrow_ids(pa.array(values)).to_pandas(), index=values.index, dtype="str")
    text = values.astype("str").str.strip(" ").str.replace(_WHOLE_TEXT, r"\1", regex=True)
    return text.where(values.notna() & (text != ""), None)


def arrow_ids(text: pa.Array | pa.ChunkedArray, trim: bool | None = None) -> pa.Array:
    """``as_id`` of Arrow text. ``trim``: whether some value has a space at an edge (None: look)."""
    if trim is None:
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        trim = not printable(text) and edge_space(*edge_bytes(text)[1:])
    if trim:
        text = pc.utf8_trim(text, " ")
    if _has_byte(text, ord(".")):
        text = pc.replace_substring_regex(text, _WHOLE_TEXT, r"\1")
    keep = pc.not_equal(text, "")
    if keep.null_count or not pc.all(keep).as_py():
        text = pc.if_else(keep, text, pa.scalar(None, text.type))
    return text


def _offsets(text: pa.Array) -> np.ndarray:
    """The value offsets of one Arrow text array (len + 1 of them, into its data buffer)."""
    width = np.int64 if pa.types.is_large_string(text.type) else np.int32
    return np.frombuffer(text.buffers()[1], width)[text.offset:text.offset + len(text) + 1] if len(text) \
        else np.zeros(1, width)


def byte_lengths(text: pa.Array, offsets: np.ndarray | None = None) -> np.ndarray:
    """Each value's length in bytes (0 for a null), off the Arrow offsets."""
    offsets = _offsets(text) if offsets is None else offsets
    length = offsets[1:] - offsets[:-1]
    if text.null_count:
        length = np.where(text.is_valid().to_numpy(zero_copy_only=False), length, 0)
    return length


def printable(text: pa.Array) -> bool:
    """Whether every byte of the values is printable ASCII but the space (0x21-0x7E): then no value has a
    space to trim, a Unicode space or a control character anywhere, and only its length is left to
    judge. Two SIMD reductions over the bytes: a 400,000-row id column in 0.1-0.2 ms, where reading
    each value's edge bytes (``edge_bytes``) takes 3.4-4.3 ms and scanning for controls 0.9-1.2 ms."""
    data_buf = text.buffers()[2]
    if data_buf is None or not len(text):
        return True
    offsets = _offsets(text)
    data = np.frombuffer(data_buf, np.uint8)[offsets[0]:offsets[-1]]  # a null's bytes, if any, count too
    return not len(data) or (int(data.min()) > 0x20 and int(data.max()) < 0x7F)


def edge_bytes(text: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each value's byte length and its first and last bytes (0 for a null or empty value), read off
    the Arrow offsets: what a value starts and ends with, without a pass over every character."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    offsets = _offsets(text)
    data_buf = text.buffers()[2]
    starts, ends = offsets[:-1], offsets[1:]
    length = byte_lengths(text, offsets)
    data = np.frombuffer(data_buf, np.uint8)[:offsets[-1]] if data_buf is not None else np.empty(0, np.uint8)
    if not len(data):
        return length, np.zeros(len(length), np.uint8), np.zeros(len(length), np.uint8)
    some = length > 0  # an empty value's start may point past the data's end
    first = np.where(some, data.take(np.minimum(starts, len(data) - 1)), 0).astype(np.uint8, copy=False)
    last = np.where(some, data.take(np.maximum(ends - 1, 0)), 0).astype(np.uint8, copy=False)
    return length, first, last


def edge_space(first: np.ndarray, last: np.ndarray) -> bool:
    """Whether some value (of ``edge_bytes``' first and last bytes) starts or ends with a space."""
    return bool(((first == 0x20) | (last == 0x20)).any())


def _float_ids(values: pd.Series) -> pd.Series:
    """A float column's ids: whole numbers below 2**63 vectorised, the rare others one by one."""
    v = values.to_numpy(dtype="float64", na_value=np.nan)
    small = np.isfinite(v) & (v == np.floor(v)) & (np.abs(v) < 2.0**63)
    text = np.full(len(v), None, dtype=object)
    text[small] = v[small].astype("int64").astype("str")
    for i in np.flatnonzero(~small & ~np.isnan(v)):
        text[i] = _id_text(float(v[i]))
    return pd.Series(text, index=values.index, dtype="str")


def _id_text(value) -> str | None:
    """One id as text: 17850.0 (a float column's artefact) as 17850, 1e20 and 2**63 exactly, never merged."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return str(int(value)) if np.isfinite(value) and value == np.floor(value) else repr(value)
    text = str(value).strip(" ")
    return re.sub(_WHOLE_TEXT, r"\1", text) or None


def is_arrow_text(values: pd.Series) -> bool:
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def id_problems(raw: pd.Series, ids: pd.Series, column: str, max_length: int) -> list[tuple[np.ndarray, str]]:
    """(rows, reason) for each way the ids of ``column`` (``raw`` as read, ``ids`` from as_id) are refused."""
    values = pa.array(ids, type=pa.string(), from_pandas=True)
    none = np.zeros(len(ids), dtype=bool)
    # A scan of the column's bytes finds most columns clean: then no per-row test is needed.
    control = control_rows(values)
    long = none
    if len(values) and (pc.max(pc.binary_length(values)).as_py() or 0) > max_length:  # bytes >= characters
        long = pc.fill_null(pc.greater(pc.utf8_length(values), max_length), False).to_numpy(zero_copy_only=False)
    edge = _per_row(pc.match_substring_regex, values, _EDGE_SPACE) if _any_non_ascii(values) else none
    floats = _is_float(raw)
    infinite = (floats & ids.astype("str").isin(["inf", "-inf"]).to_numpy()) if floats.any() else none
    return [(control, f"bad_id: {column} holds a control character (NUL, tab, newline...)"),
            (edge, f"bad_id: {column} has a Unicode space (no-break space, U+2028...) at its edge"),
            (long, f"bad_id: {column} longer than max_id_length {max_length}"),
            (infinite, f"bad_id: {column} is not a finite number")]


def control_rows(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which values hold a control character (the bytes are scanned first: most columns hold none)."""
    if not _any_control(values):
        return np.zeros(len(values), dtype=bool)
    return _per_row(pc.match_substring_regex, values, _CONTROL)


def _per_row(function, values: pa.Array | pa.ChunkedArray, pattern: str) -> np.ndarray:
    return pc.fill_null(function(values, pattern), False).to_numpy(zero_copy_only=False)


def _any_control(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any value holds a C0 control or DEL byte, or a C1 control (UTF-8 0xC2 0x80..0x9F)."""
    if isinstance(values, pa.ChunkedArray):
        return any(_any_control(chunk) for chunk in values.chunks)
    data = values.buffers()[2]
    if data is None:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)
    if ((raw < 0x20) | (raw == 0x7F)).any():
        return True
    lead = np.flatnonzero(raw[:-1] == 0xC2)
    return bool(((raw[lead + 1] >= 0x80) & (raw[lead + 1] <= 0x9F)).any())


def _has_byte(values: pa.Array | pa.ChunkedArray, byte: int) -> bool:
    if isinstance(values, pa.ChunkedArray):
        return any(_has_byte(chunk, byte) for chunk in values.chunks)
    data = values.buffers()[2]
    return data is not None and bool((np.frombuffer(data, dtype=np.uint8) == byte).any())


def _any_non_ascii(values: pa.Array | pa.ChunkedArray) -> bool:
    """Whether any value holds a byte beyond ASCII (a Unicode space needs one)."""
    if isinstance(values, pa.ChunkedArray):
        return any(_any_non_ascii(chunk) for chunk in values.chunks)
    data = values.buffers()[2]
    return data is not None and bool((np.frombuffer(data, dtype=np.uint8) >= 0x80).any())


def _is_float(raw: pd.Series) -> np.ndarray:
    if pd.api.types.is_float_dtype(raw):
        return np.ones(len(raw), dtype=bool)
    if raw.dtype == object:
        return raw.map(lambda v: isinstance(v, float)).to_numpy(dtype=bool)
    return np.zeros(len(raw), dtype=bool)
