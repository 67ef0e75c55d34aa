"""TensorBoard summaries of a training run: its HParams and its ranking figures beside the baselines'.

Every model family writes its settings once (HParams) and the figures its judge compared (``ranking/<name>``
scalars at step 0), so the HParams table of TensorBoard shows each run's settings beside the figures that
decided its release. TensorFlow is imported when a summary is written, never at import.

    python -c "from recsys.evaluation.tensorboard import write_ranking_summary; \
write_ranking_summary('/tmp/run', None, {'p_topfreq_recall_at_10': 0.2})"
"""

from __future__ import annotations


def write_ranking_summary(run_dir, cfg=None, scalars: dict[str, float] | None = None) -> None:
    """The run's HParams (``cfg``'s fields, once) and ranking scalars (``ranking/<name>``, step 0).

    The training stage writes the best epoch's validation Recall@10; the blessing gate
    (recsys.nextbasket.judge) adds the baselines' on the same week, so the HParams table of TensorBoard
    shows each run's settings beside the ranking figures that decided its push.
    """
    import dataclasses
    from pathlib import Path

    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    run_dir = Path(run_dir)
    writer = tf.summary.create_file_writer(str(run_dir))
    with writer.as_default():
        if cfg is not None:
            values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
            hp.hparams({k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in values.items()},
                       trial_id=run_dir.name)
        for name, value in (scalars or {}).items():
            if value is not None:
                tf.summary.scalar(f"ranking/{name}", float(value), step=0)
    writer.close()
