"""Maze-Hard datasets: HRM's format, the canonical rule on the real data, aug8, CSV, loading."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from halting.data import grid, maze, maze_augment, maze_csv, maze_format
from halting.data.maze_gen import layout_key

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "maze-30x30-hard-1k"
needs_real = pytest.mark.skipif(
    not (REAL / "train").is_dir(), reason="reference data folder absent"
)


def small_build(root: Path, **kw) -> Path:
    kw = {
        "size": 10,
        "min_path_moves": 20,
        "n_train": 16,
        "n_test": 8,
        "workers": 1,
        "progress": False,
        "log": lambda *a: None,
    } | kw
    maze.build_dataset(root, **kw)
    return root


@pytest.fixture(scope="module")
def generated_30(tmp_path_factory):
    """A seeded 30x30 build of 120 mazes: on 120-maze subsets of a full build the checked
    statistics stay inside the targets in 99.9% of draws (wall mean 0.366-0.380, median 111-113)."""
    root = tmp_path_factory.mktemp("gen") / "maze30"
    maze.build_dataset(root, n_train=80, n_test=40, seed=11, progress=False, log=lambda *a: None)
    return root


# ---------------------------------------------------------------- the real data


@needs_real
def test_canonical_rule_reproduces_all_real_labels():
    for split in maze_format.SPLITS:
        data = maze_format.load_maze_split(REAL, split)
        same = (grid.canonical_labels(data.inputs, 30) == data.labels).all(axis=1)
        assert same.sum() == 1000, f"{split}: {1000 - same.sum()} labels differ"
    for x, y in zip(data.inputs[:25], data.labels[:25]):  # and the per-grid reference agrees
        np.testing.assert_array_equal(grid.canonical_label(x.reshape(30, 30)).ravel(), y)


@needs_real
def test_writer_reproduces_hrm_files_byte_for_byte(tmp_path):
    data = maze_format.load_maze_split(REAL, "train")
    maze_format.write_split(tmp_path / "train", data.inputs, data.labels)
    for name in (f"all__{field}.npy" for field in maze_format.FIELDS):
        assert (tmp_path / "train" / name).read_bytes() == (REAL / "train" / name).read_bytes(), (
            name
        )
    ours = json.loads((tmp_path / "train" / "dataset.json").read_text())
    assert ours.pop("total_puzzles") == 1000
    real = json.loads((REAL / "train" / "dataset.json").read_text())
    assert list(ours.items()) == list(real.items())


@needs_real
def test_csv_round_trip_gives_identical_arrays(tmp_path):
    for split in maze_format.SPLITS:
        data = maze_format.load_maze_split(REAL, split)
        maze_csv.write_maze_csv(tmp_path / f"{split}.csv", data.inputs, data.labels)
    logs = []
    out = small_build(tmp_path / "out", source="csv", csv_dir=tmp_path, size=None, log=logs.append)
    for split in maze_format.SPLITS:
        for name in (f"all__{field}.npy" for field in maze_format.FIELDS):
            assert (out / split / name).read_bytes() == (REAL / split / name).read_bytes()
    assert any("0 answers differ" in line for line in logs)


@needs_real
def test_rotating_a_label_is_wrong_and_aug8_recomputes_it():
    data = maze_format.load_maze_split(REAL, "train")
    inputs, labels = maze_augment.augment_dihedral(data.inputs[:40], 30)
    assert inputs.shape == labels.shape == (320, 900)
    copies = inputs.reshape(40, 8, 30, 30)
    rotated_labels = np.stack(
        [maze_augment.dihedral(data.labels[:40].reshape(40, 30, 30), k) for k in range(8)], 1
    )
    for k in range(8):
        np.testing.assert_array_equal(
            copies[:, k], maze_augment.dihedral(data.inputs[:40].reshape(40, 30, 30), k)
        )
    for x, y in zip(inputs[::3], labels[::3]):  # the batched rule agrees with the per-grid one
        np.testing.assert_array_equal(grid.canonical_label(x.reshape(30, 30)).ravel(), y)
    stale = (rotated_labels.reshape(320, 900) != labels).any(axis=1)
    assert 0 < stale.sum() < 320  # transformed stored labels are often not canonical
    assert all(
        grid.is_valid_optimal(x.reshape(30, 30), y.reshape(30, 30)) for x, y in zip(inputs, labels)
    )


# ---------------------------------------------------------------- generating


def test_generated_statistics_match_the_real_targets(generated_30):
    train, test = (maze_format.load_maze_split(generated_30, split) for split in maze_format.SPLITS)
    stats = maze.maze_stats(
        np.concatenate([train.inputs, test.inputs]), np.concatenate([train.labels, test.labels]), 30
    )
    assert abs(stats["wall_fraction_mean"] - 0.37) <= 0.02
    assert abs(stats["path_moves_median"] - 112) <= 3 and stats["path_moves_min"] >= 109
    assert 110 <= stats["path_moves_p90"] <= 130 and abs(stats["manhattan_mean"] - 20) <= 3
    assert not {layout_key(x) for x in train.inputs} & {layout_key(x) for x in test.inputs}
    border = train.inputs.reshape(-1, 30, 30)[:, [0, -1], :]
    assert 0.2 < (border == grid.WALL).mean() < 0.5  # no wall ring around the grid
    np.testing.assert_array_equal(train.labels, grid.canonical_labels(train.inputs, 30))


def test_same_seed_gives_identical_bytes(tmp_path):
    a = small_build(tmp_path / "a", seed=5)
    b = small_build(tmp_path / "b", seed=5, workers=2)
    c = small_build(tmp_path / "c", seed=6)
    assert maze.content_hash(a) == maze.content_hash(b) != maze.content_hash(c)


def test_dihedral_ops_are_the_named_symmetries():
    x = np.arange(12).reshape(1, 3, 4)
    want = {
        "identity": x,
        "rot90": np.rot90(x, 1, (1, 2)),
        "rot180": x[:, ::-1, ::-1],
        "rot270": np.rot90(x, -1, (1, 2)),
        "flip_lr": x[:, :, ::-1],
        "flip_ud": x[:, ::-1],
        "transpose": x.transpose(0, 2, 1),
        "anti_transpose": x[:, ::-1, ::-1].transpose(0, 2, 1),
    }
    assert list(want) == list(maze_augment.DIHEDRAL)
    for k, name in enumerate(maze_augment.DIHEDRAL):
        np.testing.assert_array_equal(maze_augment.dihedral(x, k), want[name], err_msg=name)


def test_aug8_groups_and_labels(tmp_path):
    root = small_build(tmp_path / "aug", aug=True, n_train=6)
    plain = small_build(tmp_path / "plain", n_train=6)
    train, test = (
        maze_format.load_maze_split(root, "train"),
        maze_format.load_maze_split(root, "test"),
    )
    base = maze_format.load_maze_split(plain, "train")
    assert train.inputs.shape == (48, 100) and len(test.inputs) == 8  # test untouched
    np.testing.assert_array_equal(train.group_indices, np.arange(0, 49, 8))
    assert train.meta["total_groups"] == 6 and train.meta["seq_len"] == 100
    np.testing.assert_array_equal(train.inputs[::8], base.inputs)
    np.testing.assert_array_equal(train.labels, grid.canonical_labels(train.inputs, 10))
    for n in range(6):
        assert len({x.tobytes() for x in train.inputs[8 * n : 8 * n + 8]}) >= 4


def test_path_moves_are_the_shortest_path_lengths(tmp_path):
    data = maze_format.load_maze_split(small_build(tmp_path / "d"), "train")
    want = [grid.shortest_path_moves(x.reshape(10, 10)) for x in data.inputs]
    assert min(want) >= 20 and grid.path_moves(data.labels).tolist() == want
    assert grid.path_moves(data.labels.reshape(-1, 10, 10)).tolist() == want
    assert maze.maze_stats(data.inputs, data.labels, 10)["path_moves_min"] == min(want)


def test_subsample_is_seeded_and_train_only(tmp_path):
    full = maze_format.load_maze_split(small_build(tmp_path / "full", seed=2), "train")
    sub1 = small_build(tmp_path / "s1", seed=2, subsample_size=5)
    sub2 = small_build(tmp_path / "s2", seed=2, subsample_size=5)
    assert maze.content_hash(sub1) == maze.content_hash(sub2)
    picked = maze_format.load_maze_split(sub1, "train").inputs
    assert len(picked) == 5 and {x.tobytes() for x in picked} <= {x.tobytes() for x in full.inputs}
    assert len(maze_format.load_maze_split(sub1, "test").inputs) == 8


@pytest.mark.parametrize(
    "flag, kw",
    [
        ("--subsample-size 0", {"subsample_size": 0}),
        ("--workers 0", {"workers": 0}),
        ("--workers -2", {"workers": -2}),
    ],
)
def test_bad_counts_are_refused_before_anything_is_written(tmp_path, flag, kw):
    with pytest.raises(ValueError, match=f"{flag}: expected a positive integer"):
        small_build(tmp_path / "new", **kw)
    old = small_build(tmp_path / "old")
    before = maze.content_hash(old)
    with pytest.raises(ValueError, match=f"{flag}: expected a positive integer"):
        small_build(old, force=True, seed=4, **kw)  # --force: the old folder is kept
    assert maze.content_hash(old) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "old"
    ]


@pytest.mark.parametrize("source", ["generate", "csv"])
def test_a_subsample_larger_than_the_train_set_is_refused_before_writing(
    tmp_path, source, monkeypatch
):
    kw = {}
    if source == "csv":
        kw = {"source": "csv", "csv_dir": _csv(tmp_path), "size": None}  # 3 train mazes
    else:  # refused before a single maze is generated
        monkeypatch.setattr(maze, "generate_mazes", lambda *a, **k: pytest.fail("generated"))
    pool, where = (3, f"{tmp_path / 'csv' / 'train.csv'}") if kw else (16, "--n-train 16")
    with pytest.raises(ValueError) as err:
        small_build(tmp_path / "out", subsample_size=pool + 1, **kw)
    assert str(err.value) == (
        f"--subsample-size {pool + 1}: more than the {pool} train mazes to draw from ({where})"
    )
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    if source == "csv":  # the whole pool is allowed: nothing to leave out
        small_build(tmp_path / "out", subsample_size=pool, **kw)
        assert len(maze_format.load_maze_split(tmp_path / "out", "train").inputs) == pool


def test_csv_relabel_replaces_non_canonical_answers(tmp_path):
    built = small_build(tmp_path / "src", n_train=10, n_test=4)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for split in maze_format.SPLITS:
        data = maze_format.load_maze_split(built, split)
        labels = data.labels
        if (
            split == "train"
        ):  # other shortest paths: the rotated maze's canonical path, rotated back
            turned = maze_augment.dihedral(data.inputs.reshape(-1, 10, 10), 2).reshape(-1, 100)
            other = maze_augment.dihedral(
                grid.canonical_labels(turned, 10).reshape(-1, 10, 10), 2
            ).reshape(-1, 100)
            assert all(
                grid.is_valid_optimal(x.reshape(10, 10), y.reshape(10, 10))
                for x, y in zip(data.inputs, other)
            )
            labels = other
        maze_csv.write_maze_csv(csv_dir / f"{split}.csv", data.inputs, labels)
    differ = int((other != maze_format.load_maze_split(built, "train").labels).any(axis=1).sum())
    assert differ > 0
    logs = []
    kept = small_build(tmp_path / "kept", source="csv", csv_dir=csv_dir, size=None, log=logs.append)
    assert any(f"{differ} answers differ" in line and "--relabel" in line for line in logs)
    np.testing.assert_array_equal(maze_format.load_maze_split(kept, "train").labels, other)
    fixed = small_build(tmp_path / "fixed", source="csv", csv_dir=csv_dir, size=None, relabel=True)
    assert maze.content_hash(fixed) == maze.content_hash(built)
    # aug8 recomputes every label, so it cannot keep these answers: refused before writing
    with pytest.raises(
        maze_format.MazeDataError,
        match=rf"train.csv: {differ} answers differ from the "
        r"canonical path and --aug .* add --relabel",
    ):
        small_build(tmp_path / "aug", source="csv", csv_dir=csv_dir, size=None, aug=True)
    assert not (tmp_path / "aug").exists()
    augmented = small_build(
        tmp_path / "aug", source="csv", csv_dir=csv_dir, size=None, aug=True, relabel=True
    )
    assert len(maze_format.load_maze_split(augmented, "train").inputs) == 8 * 10


# ---------------------------------------------------------------- bad inputs


def _csv(tmp_path, question_edit=None, answer_edit=None):
    built = small_build(tmp_path / "src", n_train=3, n_test=2)
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir(exist_ok=True)
    for split in maze_format.SPLITS:
        data = maze_format.load_maze_split(built, split)
        maze_csv.write_maze_csv(csv_dir / f"{split}.csv", data.inputs, data.labels)
    text = (csv_dir / "train.csv").read_text().splitlines()
    source, q, a, rating = text[2].split(",")
    q, a = (question_edit or (lambda s: s))(q), (answer_edit or (lambda s: s))(a)
    text[2] = ",".join([source, q, a, rating])
    (csv_dir / "train.csv").write_text("\n".join(text) + "\n")
    return csv_dir


def _wall_in_goal(text, size=10):
    """The grid `text` with every neighbour of G made a wall: G unreachable, label consistent."""
    cells, g = list(text), text.index("G")
    for cell in grid.neighbour_table(size)[g]:
        cells[cell] = "#"
    return "".join(cells)


@pytest.mark.parametrize(
    "q_edit, a_edit, message",
    [
        (
            lambda q: q.replace("#", "x", 1),
            lambda a: a.replace("#", "x", 1),
            r"line 3: characters \['x'\]",
        ),
        (
            lambda q: q[:-1],
            lambda a: a[:-1],
            "line 3: question/answer of 99/99 characters, expected 100",
        ),
        (
            lambda q: q.replace(" ", "o", 1),
            None,
            r"line 3: characters \['o'\] not allowed \(question over",
        ),
        (lambda q: q.replace(" ", "S", 1), lambda a: a.replace(" ", "S", 1), "line 3: 2 'S' cells"),
        (None, lambda a: a.replace("#", " ", 1), "line 3: the label is not the input"),
        (
            _wall_in_goal,
            _wall_in_goal,
            r"csv/train\.csv: line 3: G is not reachable from S, expected a path",
        ),
    ],
)
def test_bad_csv_gives_a_clear_error_and_no_folder(tmp_path, q_edit, a_edit, message):
    csv_dir = _csv(tmp_path, q_edit, a_edit)
    with pytest.raises(maze_format.MazeDataError, match=message) as err:
        small_build(tmp_path / "out", source="csv", csv_dir=csv_dir, size=None)
    assert "train.csv" in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


HEADER = "source,question,answer,rating\n"


@pytest.mark.parametrize(
    "damage, size, message",
    [
        (
            lambda d: (d / "test.csv").write_text(HEADER + "x,SG##,SG##,0\n"),
            None,
            r"/csv: grids of 100 \(train\.csv\) and 4 \(test\.csv\) cells$",
        ),
        (
            None,
            9,
            r"/csv: grids of 100 \(train\.csv\) and 100 \(test\.csv\) cells, expected --size 9",
        ),
        (
            lambda d: (d / "train.csv").write_text(HEADER + "x,only\n"),
            None,
            r"/train\.csv: line 2: 2 fields, but the header has 4 "
            r"\(source,question,answer,rating\)",
        ),
        (
            lambda d: (d / "test.csv").write_text(HEADER + "x,SG#,SG#,0\n"),
            None,
            r"/test\.csv: line 2: 3 characters is not a square grid",
        ),
        (
            lambda d: (d / "test.csv").write_text(HEADER),
            None,
            r"/test\.csv: no mazes after the header",
        ),
    ],
)
def test_malformed_csv_files_are_named(tmp_path, damage, size, message):
    csv_dir = _csv(tmp_path)
    if damage:
        damage(csv_dir)
    with pytest.raises(maze_format.MazeDataError, match=message):
        small_build(tmp_path / "out", source="csv", csv_dir=csv_dir, size=size)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "header, missing",
    [
        ("source,question,rating", "answer"),
        ("source,rating", "question, answer"),
        ("", "question, answer"),
    ],
)
def test_a_csv_header_without_question_or_answer_is_named(tmp_path, header, missing):
    csv_dir = _csv(tmp_path)
    rows = (csv_dir / "test.csv").read_text().splitlines()[1:]
    kept = [i for i, name in enumerate(HEADER.strip().split(",")) if name in header.split(",")]
    lines = [header] + [",".join(row.split(",")[i] for i in kept) for row in rows]
    (csv_dir / "test.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(maze_format.MazeDataError) as err:
        small_build(tmp_path / "out", source="csv", csv_dir=csv_dir, size=None)
    assert str(err.value) == (
        f"{csv_dir / 'test.csv'}: line 1: the header {header or '(empty)'} "
        f"lacks column(s) {missing}; expected the header "
        f"source,question,answer,rating"
    )
    assert not (tmp_path / "out").exists()


def test_csv_columns_are_found_by_their_header_names(tmp_path):
    csv_dir = _csv(tmp_path)
    expected = maze_csv.read_maze_csv(csv_dir / "test.csv")
    rows = [row.split(",") for row in (csv_dir / "test.csv").read_text().splitlines()]
    (csv_dir / "test.csv").write_text(
        "\ufeff"
        + "".join(  # a spreadsheet's BOM, columns reordered
            f"{r[3]},{r[2]},{r[0]},{r[1]}\n" for r in rows
        ),
        encoding="utf-8",
    )
    for got, want in zip(maze_csv.read_maze_csv(csv_dir / "test.csv"), expected):
        np.testing.assert_array_equal(got, want)


def test_missing_csv_gives_a_clear_error(tmp_path):
    with pytest.raises(maze_format.MazeDataError, match=r"nowhere/train\.csv: missing"):
        small_build(tmp_path / "out", source="csv", csv_dir=tmp_path / "nowhere", size=None)
    csv_dir = _csv(tmp_path)
    (csv_dir / "test.csv").unlink()
    with pytest.raises(maze_format.MazeDataError, match=r"test\.csv: missing"):
        small_build(tmp_path / "out", source="csv", csv_dir=csv_dir, size=None)
    assert not (tmp_path / "out").exists()


def _truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "all__labels.npy").unlink(), r"all__labels\.npy: missing"),
        (
            lambda d: np.save(d / "all__inputs.npy", np.zeros((16, 99), np.uint8)),
            r"all__inputs\.npy: expected uint8 \(16, 100\)",
        ),
        (
            lambda d: np.save(d / "all__labels.npy", np.zeros((16, 100), np.int64)),
            r"all__labels\.npy: expected uint8",
        ),
        (
            lambda d: np.save(
                d / "all__group_indices.npy", np.arange(17, dtype=np.int32)[::-1].copy()
            ),
            r"all__group_indices\.npy: expected increasing",
        ),
        (lambda d: _truncate(d / "all__inputs.npy"), r"all__inputs\.npy: not a readable"),
        (lambda d: (d / "dataset.json").write_text("{"), r"dataset\.json: not valid JSON"),
        (
            lambda d: (d / "dataset.json").write_text('{"pad_id": 0}'),
            r"dataset\.json: missing keys",
        ),
        (shutil.rmtree, r"/d/train: missing split folder"),
    ],
)
def test_loader_names_the_broken_file(tmp_path, damage, message):
    root = small_build(tmp_path / "d")
    maze_format.load_maze_split(root, "train")
    damage(root / "train")
    with pytest.raises(maze_format.MazeDataError, match=message):
        maze_format.load_maze_split(root, "train")


def test_loader_says_inputs_and_labels_disagree_in_rows(tmp_path):
    root = small_build(tmp_path / "d")
    labels = maze_format.load_maze_split(root, "train").labels
    np.save(root / "train" / "all__labels.npy", np.concatenate([labels, labels]))
    with pytest.raises(maze_format.MazeDataError) as err:
        maze_format.load_maze_split(root, "train")
    assert str(err.value) == (
        f"{root / 'train'}: all__inputs.npy and all__labels.npy disagree: 16 inputs vs 32 labels"
    )


def test_loader_rejects_inconsistent_mazes(tmp_path):
    root = small_build(tmp_path / "d")
    data = maze_format.load_maze_split(root, "train")
    inputs = data.inputs.copy()
    inputs[3, np.flatnonzero(inputs[3] == grid.GOAL)] = grid.OPEN
    np.save(root / "train" / "all__inputs.npy", inputs)
    with pytest.raises(maze_format.MazeDataError, match="maze 3: 0 'G' cells"):
        maze_format.load_maze_split(root, "train")


# ---------------------------------------------------------------- writing safely


def test_interrupted_build_leaves_no_folder(tmp_path, monkeypatch):
    real_write = maze.write_split

    def write_then_stop(folder, *args, **kw):
        real_write(folder, *args, **kw)
        if folder.name == "test":
            raise KeyboardInterrupt

    monkeypatch.setattr(maze, "write_split", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        small_build(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_failed_csv_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("old\n")
    good = np.full((2, 4), 2, dtype=np.uint8)
    bad = np.full((2, 4), 9, dtype=np.uint8)  # no character for token 9: fails after the header
    with pytest.raises(IndexError):
        maze_csv.write_maze_csv(path, good, bad)
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]


def test_existing_output_needs_force(tmp_path):
    root = small_build(tmp_path / "out", seed=1)
    with pytest.raises(FileExistsError, match="--force"):
        small_build(root, seed=2)
    small_build(root, seed=2, force=True)
    assert maze.content_hash(root) == maze.content_hash(small_build(tmp_path / "two", seed=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "two"]


def test_content_hash_and_manifest(tmp_path):
    root = small_build(tmp_path / "d")
    manifest = maze.write_manifest(root, tmp_path / "manifest.json")
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["sha256"] == maze.content_hash(root) and manifest["dataset"] == "d"
    assert (manifest["size"], manifest["n_train"], manifest["n_test"]) == (10, 16, 8)
    assert set(manifest["files"]) == {"identifiers.json"} | {
        f"{s}/{n}"
        for s in maze_format.SPLITS
        for n in ["dataset.json"] + [f"all__{f}.npy" for f in maze_format.FIELDS]
    }
    assert all(
        digest == hashlib.sha256((root / rel).read_bytes()).hexdigest()
        for rel, digest in manifest["files"].items()
    )
    before = maze.content_hash(root)
    assert (
        maze.write_manifest(root, root / "manifest.json")["sha256"] == before
    )  # kept inside: ignored
    assert maze.content_hash(root) == before
    (root / "manifest.json").unlink()
    data = bytearray((root / "test" / "all__labels.npy").read_bytes())
    data[-1] ^= 1
    (root / "test" / "all__labels.npy").write_bytes(bytes(data))
    assert maze.content_hash(root) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "manifest.json"]
