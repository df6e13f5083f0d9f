"""Shared test set-up: one torch thread per process, and a tiny maze dataset.

Small models on a shared 2-core machine run far faster on one thread: with two OpenMP threads
and busy cores, a tanh-RNN train step was measured 50x slower. Subprocesses inherit the env.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_maze_dir(tmp_path_factory):
    """A generated 6x6 maze folder in HRM format (10 train, 4 test): 3 batches of 4 per
    epoch, the last one short, as test_train_maze counts on; read-only to the tests."""
    from halting.data.maze import build_dataset

    root = tmp_path_factory.mktemp("maze") / "maze-6x6"
    build_dataset(
        root, size=6, n_train=10, n_test=4, seed=0, workers=1, progress=False, log=lambda *_: None
    )
    return root


# The longest test files first: under `pytest -n 3 --dist loadfile` (make test) a file runs on one
# worker from start to end, so the local Slurm cluster's file (about 6 minutes, one cluster, run
# serially) must start at once, the learning and workflow runs next; the rest fills in around them.
LONG_FILES = ("test_slurm_cluster.py", "test_workflow_run.py", "test_learning.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))  # stable otherwise
