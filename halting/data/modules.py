"""LightningDataModules that only load: parity and addition streams, Maze-Hard folders.

The training batch at global step g is a pure function of (seed, g), so a resumed run sees the
same data as one never interrupted. Training loaders are built in `train_dataloader()`, which
Lightning calls after a checkpoint is restored, from `trainer.global_step`:
- toy tasks: an endless stream yielding the generator's batch g, g+1, ... (one endless epoch);
- maze: epochs of `steps_per_epoch` batches; epoch e visits the training set in a permutation
  that is a pure function of (seed, e); an epoch started at global step g begins at batch
  g mod steps_per_epoch.
Every DataLoader gets its own torch.Generator, so creating iterators never draws from the global
torch RNG (which dropout uses and checkpoints restore).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, get_worker_info

_MAZE_EPOCH_STREAM = 11  # SeedSequence stream of the maze epoch permutations


class DataConfig(Protocol):
    """What the DataModules read of an ExperimentConfig (halting.config sits above this module)."""

    seed: int
    batch_size: int
    data_dir: str | None


def _tensors(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class StepStream(IterableDataset):
    """Yields `make_batch(g)` for g = start, start+1, ... forever (as tensors).

    With W workers, worker w yields g = start+w, start+w+W, ...; the DataLoader takes one batch
    from each worker in turn, so the order is start, start+1, ... as without workers.
    """

    def __init__(self, make_batch: Callable[[int], dict[str, np.ndarray]], start: int = 0) -> None:
        self.make_batch = make_batch
        self.start = start

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        step = self.start + worker
        while True:
            yield _tensors(self.make_batch(step))
            step += n_workers


class ArrayBatches(Dataset):
    """Index it with a list of row indices: returns the dict of those rows as tensors."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.n = len(next(iter(arrays.values())))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        return _tensors({k: v[rows] for k, v in self.arrays.items()})


class SequentialBatches(Sampler):
    """Row-index batches 0..B-1, B..2B-1, ... (the last one may be short)."""

    def __init__(self, n: int, batch_size: int) -> None:
        self.n, self.batch_size = n, batch_size

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(0, self.n, self.batch_size):
            yield list(range(start, min(start + self.batch_size, self.n)))


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch `epoch` visits the n training examples."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _MAZE_EPOCH_STREAM, epoch]))
    return rng.permutation(n)


class EpochBatches(Sampler):
    """Training batches of epoch e = g // steps_per_epoch from batch g % steps_per_epoch on,
    where g = `global_step()` when iteration starts."""

    def __init__(self, n: int, batch_size: int, seed: int, global_step: Callable[[], int]) -> None:
        self.n, self.batch_size, self.seed, self.global_step = n, batch_size, seed, global_step

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, first = divmod(self.global_step(), len(self))
        order = epoch_permutation(self.seed, epoch, self.n)
        for b in range(first, len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size].tolist()


class _Base(pl.LightningDataModule):
    def __init__(self, config: DataConfig, data_workers: int = 0) -> None:
        super().__init__()
        self.config = config
        self.data_workers = data_workers
        self.data_meta: dict[str, Any] = {}

    def _global_step(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.global_step) if trainer is not None else 0

    def _loader(self, dataset, sampler=None, seed_offset: int = 0) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=None,
            sampler=sampler,
            num_workers=self.data_workers,
            generator=_generator(self.config.seed + seed_offset),
            persistent_workers=False,
        )

    def _val_loader(self, dataset: ArrayBatches) -> DataLoader:
        """Fixed batches in row order, on a stream of their own (seed + 1)."""
        return self._loader(dataset, SequentialBatches(len(dataset), self.config.batch_size), 1)


class ToyDataModule(_Base):
    """A generated task (parity, addition: Graves 3.1, 3.3): an endless training stream, a fixed
    validation set. `streams` and `data_meta` come from the task (halting/tasks)."""

    def __init__(
        self,
        config: DataConfig,
        streams: tuple[Callable[[int], dict[str, np.ndarray]], Callable[[], dict[str, np.ndarray]]],
        data_meta: dict[str, Any],
        data_workers: int = 0,
    ) -> None:
        super().__init__(config, data_workers)
        self._make_batch, self._make_val = streams
        self.data_meta = data_meta
        self._val: ArrayBatches | None = None

    def train_dataloader(self) -> DataLoader:
        return self._loader(StepStream(self._make_batch, self._global_step()))

    def val_dataloader(self) -> DataLoader:
        if self._val is None:
            self._val = ArrayBatches(self._make_val())
        return self._val_loader(self._val)


class MazeDataModule(_Base):
    """Maze-Hard HRM folders: train/ for training (epochs), test/ for validation."""

    def __init__(self, config: DataConfig, data_workers: int = 0) -> None:
        super().__init__(config, data_workers)
        from halting.data.maze import content_hash
        from halting.data.maze_format import load_maze_split

        root = Path(config.data_dir)
        train, test = load_maze_split(root, "train"), load_maze_split(root, "test")
        if train.size != test.size:
            raise ValueError(
                f"{root}: train mazes are {train.size}x{train.size} "
                f"but test mazes are {test.size}x{test.size}"
            )
        self._train = ArrayBatches(self._arrays(train))
        self._test = ArrayBatches(self._arrays(test))
        steps = math.ceil(len(self._train) / config.batch_size)
        self.data_meta = {
            "task": "maze",
            "vocab_size": int(train.meta["vocab_size"]),
            "seq_len": int(train.meta["seq_len"]),
            "size": int(train.size),
            "n_train": len(self._train),
            "n_test": len(self._test),
            "steps_per_epoch": steps,
            "data_dir": str(root),
            "dataset_hash": content_hash(root),
        }

    @staticmethod
    def _arrays(split) -> dict[str, np.ndarray]:
        n = len(split.inputs)
        return {
            "inputs": split.inputs.astype(np.int64),
            "labels": split.labels.astype(np.int64),
            "index": np.arange(n, dtype=np.int64),
        }

    def _sampler(self, global_step: Callable[[], int]) -> EpochBatches:
        return EpochBatches(len(self._train), self.config.batch_size, self.config.seed, global_step)

    def train_batch(self, step: int) -> dict[str, torch.Tensor]:
        """The training batch at global step `step`."""
        return self._train[next(iter(self._sampler(lambda: step)))]

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._train, self._sampler(self._global_step))

    def val_dataloader(self) -> DataLoader:
        return self._val_loader(self._test)
