"""Customer ids hashed the same way everywhere: training samples and shards that do not move between runs.

Python's ``hash`` of a string changes with every process (PYTHONHASHSEED) and DuckDB's ``hash`` is not
promised across versions, so neither can name a customer's shard or decide a training sample that
must be the same tomorrow. ``stable_hash`` is the first 8 bytes of the MD5 of the id (little-endian),
which DuckDB computes as ``md5_number_upper`` (``STABLE_HASH_SQL``): a shard chosen in SQL and one
chosen in NumPy agree.

``sample_customers`` bounds training: when more customers qualify than the budget, it keeps
``budget`` of them, stratified by activity (each tenth of the customers ranked by activity gives its
share), the same ones for the same seed, and everyone otherwise, untouched.

    python -c "import numpy as np; from pipeline.sampling import *; \
print(sample_customers(np.array(['a', 'b', 'c']), np.array([1, 5, 9]), 2, seed=42))"
"""

from __future__ import annotations

import hashlib

import numpy as np

STRATA = 10  # activity strata of a sample: each tenth of the customers by activity keeps its share


def stable_hash_sql(column: str) -> str:
    """The SQL (DuckDB) expression of ``stable_hash`` of a column: UBIGINT, the same value as in NumPy."""
    return f"md5_number_upper(CAST({column} AS VARCHAR))"


def in_shard_sql(column: str, shard: tuple[int, int] | None) -> str:
    """`` AND <stable hash of column> % n = k``, the SQL condition of shard ``(k, n)``; none (``""``) without a
    shard or for a single one, where it would select every row but still hash each (MD5)."""
    if shard is None or int(shard[1]) == 1:
        return ""
    return f" AND {stable_hash_sql(column)} % {int(shard[1])} = {int(shard[0])}"


def stable_hash(ids, seed: int | None = None) -> np.ndarray:
    """uint64 per id: the first 8 bytes of MD5(id) (or of ``"<seed>:<id>"``), little-endian."""
    prefix = b"" if seed is None else f"{seed}:".encode()
    digests = b"".join(hashlib.md5(prefix + str(v).encode()).digest()[:8] for v in ids)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def shard_of(ids, shards: int) -> np.ndarray:
    """The shard (0 ... shards - 1) of each customer id, as ``stable_hash_sql(id) % shards`` in SQL."""
    return (stable_hash(ids) % np.uint64(shards)).astype(np.int64)


def sample_customers(users: np.ndarray, activity: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """Boolean mask over ``users``: all True when ``budget`` is 0 or no smaller than the number of users;
    else exactly ``budget`` customers, each activity stratum (tenths of the customers ranked by
    ``activity``) keeping its share, the lowest seeded hashes within it."""
    n = len(users)
    if budget <= 0 or n <= budget:
        return np.ones(n, dtype=bool)
    key = stable_hash(users, seed)
    by_activity = np.lexsort((key, np.asarray(activity, dtype=np.float64)))
    stratum = np.empty(n, dtype=np.int64)
    stratum[by_activity] = np.arange(n) * STRATA // n
    sizes = np.bincount(stratum, minlength=STRATA)
    quota = budget * sizes / n
    take = np.floor(quota).astype(np.int64)
    short = budget - int(take.sum())  # largest remainders first, ties to the lower stratum
    take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    order = np.lexsort((key, stratum))  # by stratum, then seeded hash
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n) - np.repeat(first, sizes)
    return position < take[stratum]
