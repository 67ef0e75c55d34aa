"""Customer value: each customer's expected spend over the next H days (the ``value`` stage).

``data`` (customer-days from the raw log, DuckDB) → ``features`` (BG/NBD summary, RFM statics,
weekly sequences) → the members: ``bgnbd`` (BG/NBD + Gamma-Gamma by maximum likelihood), ``ziln``
(the LSTM with a zero-inflated lognormal output), ``rfm`` (a ridge on RFM features) → ``ensemble``
(their blend) → ``backtest`` (one calibration / hold-out split, weights chosen before the hold-out)
→ ``metrics`` → ``choice`` (the published model: the ensemble only where it is no worse than BG/NBD +
GG) → ``stage`` (the computation) → ``part`` (``PART``: train into a run as one set, judge, assemble).

    trendrec value --json
"""
