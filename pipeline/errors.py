"""The one exception family that trendrec raises for expected failures.

The CLI prints these as a one-line reason on stderr (no traceback) and exits non-zero; anything
else is a bug and keeps its traceback.

    python -c "from pipeline.errors import TrendrecError; print(TrendrecError.__doc__)"
"""


class TrendrecError(Exception):
    """An expected failure with a message a user can act on (bad input, missing stage output...)."""


def log_failure(context) -> None:
    """Airflow ``on_failure_callback``: one clear line per failed task (DAG, task, date, try, reason).

    Kept here, with no Airflow import, so that every DAG file shares it at no parse-time cost.
    """
    import logging

    ti = context.get("task_instance")
    logging.getLogger("trendrec.dags").error(
        "trendrec failure: dag=%s task=%s logical_date=%s run_id=%s try=%s: %r",
        context["dag"].dag_id, getattr(ti, "task_id", "-"), context.get("logical_date"),
        context.get("run_id"), getattr(ti, "try_number", "-"), context.get("exception"))
