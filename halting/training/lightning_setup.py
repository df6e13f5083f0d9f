"""Lightning set-up for `train`: the warnings that do not apply here, the filter on its cloud
logger tip, and the loggers (CSVLogger; TensorBoard when installed)."""

from __future__ import annotations

import logging
from pathlib import Path

# Lightning warnings that do not apply here (our loaders resume by global step; srun is
# the scheduler's business).
_QUIET = (
    ".*does not have many workers.*",
    ".*dataloader is not resumable.*",
    ".*smaller than the logging interval.*",
    ".*IterableDataset.*__len__.*",
    ".*`srun` command is available.*",
    ".*`isinstance.treespec, LeafSpec.` is deprecated.*",
)


class _DropTip(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger from our logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def _quiet_lightning() -> None:
    lightning_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    if not any(isinstance(f, _DropTip) for f in lightning_log.filters):
        lightning_log.addFilter(_DropTip())


def _loggers(run_dir: Path) -> list:
    from pytorch_lightning.loggers import CSVLogger

    loggers = [CSVLogger(save_dir=str(run_dir), name="logs", flush_logs_every_n_steps=1)]
    try:
        from pytorch_lightning.loggers import TensorBoardLogger

        loggers.append(
            TensorBoardLogger(
                save_dir=str(run_dir),
                name="tensorboard",
                version=loggers[0].version,
                default_hp_metric=False,
            )
        )
    except ImportError:  # tensorboard not installed: metrics.csv only
        pass
    return loggers
