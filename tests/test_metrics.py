"""Task metrics on hand-made cases, and the maze metrics on a real Maze-Hard example."""

from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch

from halting.data.grid import CHARSET, GOAL, PATH, START, WALL, canonical_label
from halting.evaluation.evaluate import summarise_steps
from halting.tasks.addition import correct as addition_correct
from halting.tasks.maze import f1_from_counts, f1_on_device, maze_metrics, valid_optimal
from halting.tasks.parity import correct as parity_correct

MAZE_HARD = Path("/work/shared/maze-30x30-hard-1k")


def grid(*rows: str) -> np.ndarray:
    """A maze written as strings in HRM's charset "# SGo" (token = index + 1)."""
    return np.array([[CHARSET.index(c) + 1 for c in row] for row in rows], dtype=np.int64)


def flat(*grids: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack([g.ravel() for g in grids]))  # (B, L)


# S at (0, 0), G at (2, 4): three shortest paths of 6 moves, a longer one along row 4.
MAZE = grid("S    ", " # # ", "    G", " ### ", "     ")
CANONICAL = grid(
    "S    ",  # BFS expands down first
    "o# # ",
    "ooooG",
    " ### ",
    "     ",
)
OTHER_SHORTEST = grid("Soooo", " # #o", "    G", " ### ", "     ")
THROUGH_WALL = grid("So   ", " o # ", " oooG", " ### ", "     ")
BROKEN = grid(
    "Sooo ",  # right number of cells, not connected
    " # # ",
    "  ooG",
    " ### ",
    "     ",
)
LONGER = grid("S    ", "o# # ", "o   G", "o###o", "ooooo")


def test_hand_drawn_label_is_the_canonical_path():
    assert np.array_equal(canonical_label(MAZE), CANONICAL)


def test_valid_optimal_accepts_any_shortest_path_and_exact_only_the_label():
    preds = [CANONICAL, OTHER_SHORTEST, THROUGH_WALL, BROKEN, LONGER, MAZE]
    ok = valid_optimal(flat(*[MAZE] * 6), flat(*preds))
    assert ok.dtype == np.bool_ and ok.tolist() == [True, True, False, False, False, False]
    m = maze_metrics(flat(*preds), flat(*[CANONICAL] * 6))
    assert m["exact"].tolist() == [True, False, False, False, False, False]


def test_maze_token_accuracy_and_path_counts():
    m = maze_metrics(flat(OTHER_SHORTEST, MAZE), flat(CANONICAL, CANONICAL))
    # OTHER_SHORTEST: 5 'o' cells, none on the label's 5; 10 cells differ out of 25
    assert m["path_tp"].tolist() == [0, 0]
    assert m["path_fp"].tolist() == [5, 0]
    assert m["path_fn"].tolist() == [5, 5]
    assert torch.allclose(m["token_correct"], torch.tensor([15 / 25, 20 / 25]))
    m = maze_metrics(flat(THROUGH_WALL), flat(CANONICAL))
    assert (m["path_tp"].item(), m["path_fp"].item(), m["path_fn"].item()) == (3, 2, 2)
    assert f1_from_counts(m["path_tp"], m["path_fp"], m["path_fn"]) == pytest.approx(0.6)


def test_padding_cells_are_not_scored():
    labels = torch.tensor([[0, 0, 2, 5], [2, 2, 2, 5]])
    pred = torch.tensor([[5, 1, 2, 5], [2, 2, 1, 5]])
    m = maze_metrics(pred, labels)
    assert m["exact"].tolist() == [True, False]
    assert m["token_correct"].tolist() == [1.0, 0.75]
    assert m["path_fp"].tolist() == [0, 0]


def test_f1_from_counts_is_micro_averaged():
    tp, fp, fn = torch.tensor([4, 0]), torch.tensor([0, 2]), torch.tensor([0, 2])
    assert f1_from_counts(tp, fp, fn) == pytest.approx(8 / 12)  # not the mean of 1 and 0
    assert f1_from_counts(torch.tensor([0]), torch.tensor([0]), torch.tensor([0])) == 1.0
    assert f1_from_counts([0], [3], [0]) == 0.0


def test_f1_on_device_is_the_logged_f1_from_counts():
    """The training step's sync-free F1 is bit for bit the float32 of f1_from_counts."""
    gen = torch.Generator().manual_seed(0)
    for i in range(300):
        tp, fp, fn = (torch.randint(0, 900, (16,), generator=gen) * (i % 3 > 0) for _ in range(3))
        got = f1_on_device(tp, fp, fn)
        assert got.dim() == 0 and got.dtype == torch.float32
        assert torch.equal(got, torch.tensor(f1_from_counts(tp, fp, fn))), (tp, fp, fn)
    zero = torch.zeros(4, dtype=torch.int64)
    assert f1_on_device(zero, zero, zero).item() == 1.0
    assert f1_on_device(zero, zero + 3, zero).item() == 0.0


def test_batch_metrics_without_host_syncs_log_the_same_values():
    from halting.criteria import HaltingOutput
    from halting.tasks import get_task
    from halting.training.system import batch_metrics

    gen = torch.Generator().manual_seed(1)
    B, L = 6, 25
    labels = torch.randint(0, 6, (B, L), generator=gen)
    logits = torch.randn(B, L, 6, generator=gen)
    logits[:, :, PATH] += 1.0  # plenty of predicted path cells
    steps = torch.randint(1, 5, (B, L), generator=gen).float()
    mask = torch.rand(B, L, generator=gen) < 0.7
    p = torch.zeros(B, L, 4)
    out = HaltingOutput(
        logits=logits,
        p=p,
        halt_prob=p,
        steps=steps,
        remainder=steps * 0,
        ponder_cost=torch.tensor(0.0),
        unit_mask=mask,
    )
    m = batch_metrics(get_task("maze"), out, {"labels": labels})
    c = maze_metrics(logits.argmax(-1), labels)
    assert torch.equal(
        m["path_f1"], torch.tensor(f1_from_counts(c["path_tp"], c["path_fp"], c["path_fn"]))
    )
    assert torch.equal(m["steps"], steps[mask].mean())  # the boolean-indexed mean it replaces


def test_parity_correct():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0], [1.0, 0.5]])
    assert parity_correct(logits, torch.tensor([0, 0, 0])).tolist() == [True, False, True]


def _one_hot_logits(pred: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.one_hot(pred, 11).float()  # (B, T, P, 11)


def test_addition_correct_counts_every_place_of_scored_steps():
    y = torch.tensor([[[1, 10], [3, 10], [6, 1]], [[9, 10], [8, 1], [7, 2]]])  # (B=2, T=3, P=2)
    mask = torch.tensor([[False, True, True], [False, True, True]])
    pred = y.clone()
    pred[0, 0] = torch.tensor([5, 5])  # t = 0 is not scored
    pred[1, 1, 1] = 10  # a blank where the digit 1 belongs
    r = addition_correct(_one_hot_logits(pred), y, mask)
    assert r["place_count"].tolist() == [4, 4]
    assert r["place_correct"].tolist() == [1.0, 0.75]
    assert r["sequence"].tolist() == [True, False]
    pred[0, 1, 1] = 3  # a digit where the target is blank is wrong too
    r = addition_correct(_one_hot_logits(pred), y, mask)
    assert r["place_correct"][0].item() == 0.75 and not r["sequence"][0]


def test_addition_with_nothing_scored_counts_as_wrong():
    y = torch.zeros(2, 1, 3, dtype=torch.long)
    r = addition_correct(_one_hot_logits(y), y, torch.zeros(2, 1, dtype=torch.bool))
    assert r["place_count"].tolist() == [0, 0]
    assert r["place_correct"].tolist() == [0.0, 0.0] and r["sequence"].tolist() == [False, False]


def test_summarise_steps():
    s = summarise_steps(np.array([[1, 2], [3, 10]]), limit=10)
    assert s["steps_mean"] == 4.0 and s["steps_median"] == 2.5 and s["steps_max"] == 10.0
    assert s["steps_p90"] == pytest.approx(np.percentile([1, 2, 3, 10], 90))
    assert s["forced_halt_rate"] == 0.25
    assert summarise_steps(np.array([1.5, 2.0]), limit=2)["forced_halt_rate"] == 0.5
    with pytest.raises(ValueError):
        summarise_steps(np.array([]), limit=2)


# --- real Maze-Hard data (skipped when the reference copy is absent) --------------------------


def _load(split: str) -> tuple[np.ndarray, np.ndarray]:
    if not (MAZE_HARD / split / "all__inputs.npy").exists():
        pytest.skip(f"{MAZE_HARD} is absent")
    inputs = np.load(MAZE_HARD / split / "all__inputs.npy").astype(np.int64)
    labels = np.load(MAZE_HARD / split / "all__labels.npy").astype(np.int64)
    return inputs, labels


def _bfs_path(maze: np.ndarray, moves) -> np.ndarray:
    """The maze with a shortest S->G path (first-found parents in `moves` order) marked 'o'."""
    size = maze.shape[0]
    start = tuple(np.argwhere(maze == START)[0])
    goal = tuple(np.argwhere(maze == GOAL)[0])
    parent = {start: None}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in moves:
            nxt = (r + dr, c + dc)
            if (
                0 <= nxt[0] < size
                and 0 <= nxt[1] < size
                and maze[nxt] != WALL
                and nxt not in parent
            ):
                parent[nxt] = (r, c)
                queue.append(nxt)
    out, cell = maze.copy(), parent[goal]
    while cell != start:
        out[cell] = PATH
        cell = parent[cell]
    return out


def test_real_maze_hard_example():
    inputs, labels = _load("test")
    maze, label = inputs[0].reshape(30, 30), labels[0].reshape(30, 30)
    orders = [((-1, 0), (0, 1), (0, -1), (1, 0)), ((0, 1), (-1, 0), (1, 0), (0, -1))]
    other = next(p for p in (_bfs_path(maze, o) for o in orders) if not np.array_equal(p, label))
    wall_path = label.copy()
    r, c = np.argwhere(label == PATH)[0]
    wall_path[r, c] = 2  # move one path cell onto the nearest wall
    walls = np.argwhere(maze == WALL)
    wall_path[tuple(walls[np.abs(walls - [r, c]).sum(axis=1).argmin()])] = PATH
    preds = [label, other, maze, wall_path]
    ok = valid_optimal(flat(*[maze] * 4), flat(*preds))
    assert ok.tolist() == [True, True, False, False]
    m = maze_metrics(flat(*preds), flat(*[label] * 4))
    assert m["exact"].tolist() == [True, False, False, False]
    assert m["path_fn"][0] == 0 and m["path_tp"][0] == (label == PATH).sum()


@pytest.mark.parametrize("split,expected", [("test", 0.87498), ("train", 0.87437)])
def test_copying_the_input_scores_about_87_5_percent_of_cells(split, expected):
    inputs, labels = _load(split)
    m = maze_metrics(torch.from_numpy(inputs), torch.from_numpy(labels))
    assert m["token_correct"].mean().item() == pytest.approx(expected, abs=1e-5)
    assert not m["exact"].any()
