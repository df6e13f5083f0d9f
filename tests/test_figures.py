"""Paper figures from fixture result folders: statistics, labels, one-page PDFs, loading errors."""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_runs import (  # noqa: E402
    EXPERIMENTS,
    NO_PDFTOPPM,
    PDFTOPPM,
    assert_pdf_basics,
    image_is_blank,
    pdf_page_count,
    render_pdf_pages,
    write_results,
    write_run,
)

from halting.cli import main  # noqa: E402
from halting.report import (
    figures,  # noqa: E402
    plots_common,  # noqa: E402
    style,  # noqa: E402
)
from halting.report.runs import RunFormatError, load_run, load_runs  # noqa: E402
from halting.report.stats import (  # noqa: E402
    mean_ci,
    pareto_front,
    steps_range,
    t_interval,
    t_quantile,
)

ALL_FIGURES = [
    *(
        f"{kind}_{task}"
        for kind in (
            "training",
            "ponder_vs_difficulty",
            "accuracy_vs_ponder",
            "ponder_distribution",
        )
        for task in ("maze", "parity", "addition")
    ),
    *(f"maze_examples_{spec[0]}" for spec in EXPERIMENTS["maze"]),
    "maze_hard_accuracy",
]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    write_results(root)
    return root


@pytest.fixture(scope="module")
def runs(results):
    return load_runs(results)


@pytest.fixture(scope="module")
def figure_paths(results, tmp_path_factory) -> list[Path]:
    return figures.make_figures(results, tmp_path_factory.mktemp("figures"))


# ------------------------------------------------------------------------------ statistics


@pytest.mark.parametrize(
    "q, df, expected",
    [
        (0.975, 1, 12.7062047),
        (0.975, 2, 4.3026527),
        (0.975, 4, 2.7764451),
        (0.975, 30, 2.0422725),
        (0.95, 10, 1.8124611),
        (0.975, 1e7, 1.9599640),
        (0.025, 4, -2.7764451),
    ],
)
def test_t_quantile_matches_tables(q, df, expected):
    assert t_quantile(q, df) == pytest.approx(expected, abs=2e-6)


def test_t_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError, match="quantile level"):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_quantile(0.975, 0)


def test_mean_ci_hand_computed():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0, float("nan")])
    half = 3.1824463 * math.sqrt(5 / 3) / 2  # t_{0.975,3} * sd / sqrt(4)
    assert (mean, lo, hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half), abs=1e-6)
    assert all(math.isnan(v) for v in mean_ci([]))
    m90 = mean_ci([1.0, 2.0, 3.0, 4.0], level=0.9)
    assert m90[2] - m90[0] == pytest.approx(2.3533634 * math.sqrt(5 / 3) / 2, abs=1e-6)


@pytest.mark.parametrize("values", [[0.7], [0.956, 0.809], [0.956, float("nan"), 0.809]])
def test_mean_ci_needs_three_seeds(values):
    mean, lo, hi = mean_ci(values, limits=(0.0, 1.0))
    assert mean == pytest.approx(np.nanmean(values))
    assert math.isnan(lo) and math.isnan(hi)  # two seeds: t_{0.975,1} = 12.7, no interval


def test_mean_ci_is_clipped_to_the_metric_range():
    values = [0.99, 1.0, 0.97]  # sd 0.015275; t_{0.975,2} = 4.3026527
    half = 4.3026527 * np.std(values, ddof=1) / math.sqrt(3)
    mean, lo, hi = mean_ci(values, limits=(0.0, 1.0))
    assert mean + half == pytest.approx(1.0246, abs=1e-4)  # what the t interval reaches
    assert (mean, lo, hi) == pytest.approx((np.mean(values), np.mean(values) - half, 1.0))
    assert mean_ci(values)[2] == pytest.approx(mean + half)  # unbounded: not clipped
    low, high = t_interval([0.5, -0.9], [0.1, 0.3], [3, 3], limits=(-1.0, 1.0))
    assert high[0] == pytest.approx(0.5 + 4.3026527 * 0.1 / math.sqrt(3)) and low[1] == -1.0


def test_steps_range_is_one_to_m():
    assert steps_range({"model_type": "act_rnn", "config": {"time_limit": 16}}) == (1.0, 16.0)
    ut = {"model_type": "universal_transformer", "config": {"ut_max_hops": 6}}
    assert steps_range(ut) == (1.0, 6.0)
    assert steps_range({"model_type": "act_rnn", "config": None}) == (1.0, math.inf)


def test_pareto_front_hand_made_points():
    cost = [1.0, 2.0, 2.0, 3.0, 4.0, 0.5, float("nan"), 1.0, 5.0, 4.5]
    score = [0.5, 0.7, 0.6, 0.65, 0.9, 0.4, 0.99, 0.5, 0.9, 0.95]
    # 2: same cost as 1, lower score; 3: dominated by 1; 6: NaN; 7: duplicate of 0; 8: by 4
    assert pareto_front(cost, score).tolist() == [5, 0, 1, 4, 9]
    assert pareto_front([], []).tolist() == []
    assert pareto_front([3.0, 1.0], [0.2, 0.8]).tolist() == [1]
    with pytest.raises(ValueError):
        pareto_front([1.0], [1.0, 2.0])


def test_seed_band_aligns_seeds_and_covers_tails():
    a = (np.array([0, 10, 20, 30]), np.array([1.0, 2.0, 3.0, 4.0]))
    b = (np.array([0, 10, 20]), np.array([3.0, 4.0, 5.0]))
    b2 = (np.array([0, 10, 20, 30]), np.array([2.0, 3.0, 4.0, 5.0]))
    grid, mean, lo, hi = plots_common.seed_band([a, b, b2])
    assert grid.tolist() == [0, 10, 20, 30]
    assert mean.tolist() == pytest.approx([2.0, 3.0, 4.0, 4.5])
    _, low, high = mean_ci([1.0, 3.0, 2.0])
    assert (lo[0], hi[0]) == pytest.approx((low, high))
    assert math.isnan(lo[3]) and math.isnan(hi[3])  # only seeds a and b2 reached step 30
    _, _, lo2, hi2 = plots_common.seed_band([a, b])  # two seeds: the mean line, no band
    assert np.isnan(lo2).all() and np.isnan(hi2).all()
    _, _, lo3, hi3 = plots_common.seed_band([a, b, b2], limits=(1.0, 5.5))
    assert (low, high) == pytest.approx((2 - 2.4841377, 2 + 2.4841377))  # t_{0.975,2} * 1 / sqrt(3)
    assert lo3[0] == 1.0 and hi3[0] == pytest.approx(high) and hi3[2] == 5.5  # clipped to range
    # a seed logged at other steps is interpolated onto the union of steps
    c = (np.array([5, 15, 25]), np.array([2.0, 2.0, 2.0]))
    grid, mean, _, _ = plots_common.seed_band([a, c])
    assert grid.tolist() == [0, 5, 10, 15, 20, 25, 30]
    assert mean[1] == pytest.approx((1.5 + 2.0) / 2)
    # long curves are binned to at most max_points
    x = np.arange(10_000)
    grid, mean, _, _ = plots_common.seed_band([(x, x * 2.0)], max_points=100)
    assert len(grid) == 100 and np.allclose(mean, grid * 2.0, atol=1.0)  # bins 100 steps wide
    assert grid[0] == pytest.approx(9999 / 200) and grid[-1] == pytest.approx(9999 - 9999 / 200)


# ------------------------------------------------------------------------------ style


def test_label_for_names_model_criterion_and_penalty():
    act = {"model_type": "act_rnn", "criterion": "act", "tau": 0.001}
    assert style.label_for(act) == "ACT-RNN · ACT · τ=0.001"
    pn = {"model_type": "universal_transformer", "criterion": "pondernet", "tau": 1e-4}
    assert style.label_for(pn) == "UT · PonderNet · β=1e-4"
    fixed = {
        "model_type": "universal_transformer",
        "criterion": "fixed",
        "tau": None,
        "config": {"ut_max_hops": 6, "time_limit": 16},
    }
    assert style.label_for(fixed) == "UT · fixed · K=6"
    assert style.label_for({**fixed, "model_type": "act_rnn"}) == "ACT-RNN · fixed · K=16"
    assert style.label_for({"model_type": "act_rnn", "criterion": "fixed", "tau": None}) == (
        "ACT-RNN · fixed"
    )
    assert [style.format_number(v) for v in (0.01, 5e-5, 2.5e-4, 3, 0.25)] == [
        "0.01",
        "5e-5",
        "2.5e-4",
        "3",
        "0.25",
    ]


def test_style_sizes_and_fonts():
    assert style.COLUMN_WIDTH == 3.3 and style.PAGE_WIDTH == 6.9
    assert style.RC["pdf.fonttype"] == 42
    assert not style.RC["axes.spines.top"] and not style.RC["axes.spines.right"]


# ------------------------------------------------------------------------------ figures


def _builders(runs):
    out = {}
    for task in ("maze", "parity", "addition"):
        out[f"training_{task}"] = lambda t=task: figures.training_curves(runs, t)
        out[f"ponder_vs_difficulty_{task}"] = lambda t=task: figures.ponder_vs_difficulty(runs, t)
        out[f"accuracy_vs_ponder_{task}"] = lambda t=task: figures.accuracy_vs_ponder(runs, t)
        out[f"ponder_distribution_{task}"] = lambda t=task: figures.ponder_distribution(runs, t)
    for spec in EXPERIMENTS["maze"]:
        out[f"maze_examples_{spec[0]}"] = lambda e=spec[0]: figures.maze_examples(runs, e)
    out["maze_hard_accuracy"] = lambda: figures.maze_hard_accuracy(runs)
    return out


@pytest.mark.parametrize("name", ALL_FIGURES)
def test_each_figure_is_a_labelled_paper_figure(runs, name):
    import matplotlib.pyplot as plt

    with style.context():
        fig = _builders(runs)[name]()
        try:
            assert fig.get_size_inches()[0] in (style.COLUMN_WIDTH, style.PAGE_WIDTH)
            for ax in fig.axes:
                if ax.get_label() == "<colorbar>" or not ax.get_xticks().size:
                    continue
                assert ax.get_xlabel(), f"{name}: unlabelled x axis"
                siblings = ax.get_shared_y_axes().get_siblings(ax)  # sharey panels: label once
                assert any(a.get_ylabel() for a in siblings), f"{name}: unlabelled y axis"
            if PDFTOPPM is None:  # the PDF cannot be rasterised here: check matplotlib's own
                fig.canvas.draw()
                assert not image_is_blank(np.asarray(fig.canvas.buffer_rgba()))
        finally:
            plt.close(fig)


def test_make_figures_writes_one_page_pdfs(figure_paths):
    assert [p.stem for p in figure_paths] == ALL_FIGURES
    folder = figure_paths[0].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.pdf" for n in ALL_FIGURES)
    for path in figure_paths:  # also: no temporary file left behind (listing above)
        assert_pdf_basics(path)
        assert pdf_page_count(path) == 1, path.name


@pytest.mark.skipif(PDFTOPPM is None, reason=NO_PDFTOPPM)
def test_figure_pdfs_rasterise_non_blank(figure_paths, tmp_path):
    for path in figure_paths:
        pages = render_pdf_pages(path, tmp_path / "png")
        assert len(pages) == 1, path
        assert not image_is_blank(pages[0]), f"{path.name} renders blank"
        shutil.rmtree(tmp_path / "png")


def test_legends_name_every_experiment(runs):
    import matplotlib.pyplot as plt

    with style.context():
        fig = figures.training_curves(runs, "parity")
        texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        plt.close(fig)
    assert texts == [
        "ACT-RNN · ACT · τ=0.001 (n=2)",
        "ACT-RNN · ACT · τ=0.01 (n=2)",
        "ACT-RNN · PonderNet · β=0.01 (n=2)",
    ]


def test_bands_need_three_seeds(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    with style.context():
        for seeds, bands in (((0,), False), ((0, 1), False), ((0, 1, 2), True)):
            root = tmp_path / f"n{len(seeds)}"
            write_results(root, tasks=("parity",), seeds=seeds)
            fig = figures.training_curves(load_runs(root), "parity")
            has_band = any(isinstance(c, PolyCollection) for ax in fig.axes for c in ax.collections)
            assert "95% CI from 3 seeds" in fig._suptitle.get_text()  # the rule, in the caption
            plt.close(fig)
            assert has_band == bands, seeds


def test_maze_hard_error_bars_need_three_seeds(tmp_path):
    import matplotlib.pyplot as plt

    texts = {}
    with style.context():
        for seeds in ((0, 1), (0, 1, 2)):
            root = tmp_path / f"n{len(seeds)}"
            write_results(root, tasks=("maze",), seeds=seeds)
            fig = figures.maze_hard_accuracy(load_runs(root))
            caps = [c for c in fig.axes[0].containers if type(c).__name__ == "ErrorbarContainer"]
            texts[len(seeds)] = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
            plt.close(fig)
            assert len(caps) == (0 if len(seeds) < 3 else 3)
    assert "95% CI from 3 seeds" in texts[2]


def test_figures_without_data_are_skipped_with_a_reason(tmp_path, caplog):
    write_results(tmp_path, tasks=("parity", "maze"), seeds=(0,))
    for p in tmp_path.glob("parity/*/seed0/per_example.parquet"):
        p.unlink()
    for p in tmp_path.glob("maze/*/seed0/run.json"):  # a small maze: no Maze-Hard figure
        meta = json.loads(p.read_text())
        p.write_text(json.dumps({**meta, "dataset": "maze-9x9-small", "maze_size": 9}))
    import matplotlib.pyplot as plt

    names = []
    with caplog.at_level(logging.INFO, logger="halting.report.figures"):
        for name, fig in figures.iter_figures(load_runs(tmp_path)):
            names.append(name)
            plt.close(fig)
    assert "training_parity" in names and "accuracy_vs_ponder_parity" in names
    assert "ponder_vs_difficulty_parity" not in names and "ponder_distribution_parity" not in names
    assert "maze_hard_accuracy" not in names and "ponder_vs_difficulty_maze" in names
    assert (
        "skipping figure ponder_vs_difficulty_parity: parity: no per_example.parquet" in caplog.text
    )
    assert "skipping figure maze_hard_accuracy: no maze run on 30x30 hard data" in caplog.text
    with pytest.raises(figures.NoData):
        figures.ponder_distribution(load_runs(tmp_path), "parity")


def test_maze_hard_rule():
    from halting.report.runs import is_maze_hard_30

    assert is_maze_hard_30({"task": "maze", "maze_size": 30, "dataset": "maze-30x30-hard-1k"})
    assert not is_maze_hard_30({"task": "maze", "maze_size": 30, "dataset": "maze-30x30-easy"})
    assert not is_maze_hard_30({"task": "maze", "maze_size": 15, "dataset": "maze-15x15-hard"})
    assert not is_maze_hard_30({"task": "parity", "maze_size": None, "dataset": "hard"})


# ------------------------------------------------------------------------------ loading


def test_non_maze_runs_need_no_examples(results):
    run = load_run(results / "parity" / "rnn_act_tau1e-3" / "seed0")
    assert run.examples is None and run.per_example is not None
    assert run.headline == "accuracy" and 0 <= run.headline_value <= 1


@pytest.mark.parametrize(
    "filename, content, message",
    [
        ("eval.json", "{not json", "cannot read JSON"),
        ("run.json", json.dumps({"task": "parity"}), "missing key(s) experiment"),
        ("train_metrics.csv", "epoch,train/loss_total\n0,1.0\n", "no 'step' column"),
        ("train_metrics.csv", "step,train/loss_total\n0,abc\n", "is not numeric"),
        ("per_example.parquet", "not parquet", "cannot read Parquet"),
    ],
)
def test_malformed_file_names_the_file(tmp_path, filename, content, message):
    run_dir = write_run(tmp_path, "parity", EXPERIMENTS["parity"][0], seed=0, n_examples=10)
    (run_dir / filename).write_text(content)
    with pytest.raises(RunFormatError) as err:
        load_run(run_dir)
    assert str(run_dir / filename) in str(err.value) and message in str(err.value)


def test_malformed_eval_and_examples(tmp_path):
    run_dir = write_run(tmp_path, "maze", EXPERIMENTS["maze"][0], seed=0, n_examples=10)
    ev = json.loads((run_dir / "eval.json").read_text())
    ev["learned"]["exact_accuracy"] = 85.3  # a percentage where a fraction belongs
    (run_dir / "eval.json").write_text(json.dumps(ev))
    with pytest.raises(RunFormatError, match="not a fraction in"):
        load_run(run_dir)
    del ev["learned"]["exact_accuracy"]
    (run_dir / "eval.json").write_text(json.dumps(ev))
    with pytest.raises(RunFormatError, match="'learned' has no 'exact_accuracy'"):
        load_run(run_dir)
    ev["learned"]["exact_accuracy"] = 0.5
    (run_dir / "eval.json").write_text(json.dumps(ev))
    data = dict(np.load(run_dir / "examples.npz"))
    del data["steps"]
    np.savez(run_dir / "examples.npz", **data)
    with pytest.raises(RunFormatError, match=r"examples\.npz: missing array\(s\) steps"):
        load_run(run_dir)
    data["steps"] = data["labels"]
    data["example_id"] = data["example_id"][:-1]
    np.savez(run_dir / "examples.npz", **data)
    k = len(data["inputs"])
    with pytest.raises(RunFormatError, match=rf"example_id must be \({k},\), got \({k - 1},\)"):
        load_run(run_dir)
    (run_dir / "examples.npz").unlink()
    (run_dir / "per_example.parquet").unlink()
    run = load_run(run_dir)
    assert run.examples is None and run.per_example is None
    ev["max_steps"] = [0.5]
    (run_dir / "eval.json").write_text(json.dumps(ev))
    with pytest.raises(RunFormatError, match="'max_steps' must be an object, got list"):
        load_run(run_dir)


def test_seeds_of_one_experiment_must_agree(tmp_path):
    write_results(tmp_path, tasks=("parity",), seeds=(0, 1))
    path = tmp_path / "parity" / "rnn_act_tau1e-3" / "seed1" / "run.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "tau": 0.5}))
    with pytest.raises(RunFormatError, match="tau=0.5 differs"):
        load_runs(tmp_path)


def test_manifest_hash_reads_the_manifest():
    from halting.training.run_json import manifest_hash

    assert manifest_hash("abc") == "abc" and manifest_hash(None) is None
    assert manifest_hash({"content_hash": "f00", "files": 3}) == "f00"
    # a manifest without a hash entry is identified by the SHA-256 of its canonical JSON
    h = manifest_hash({"b": 1, "a": [1, 2]})
    assert h == manifest_hash({"a": [1, 2], "b": 1}) and len(h) == 64
    assert h != manifest_hash({"b": 2, "a": [1, 2]})


def test_missing_results_root_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_runs(tmp_path / "nope")


# ------------------------------------------------------------------------------ CLI


def test_cli_figures_with_explicit_runs(results, figure_paths, tmp_path, capsys):
    dirs = sorted(str(p) for p in (results / "parity").glob("*/seed*"))
    assert main(["figures", "--runs", *dirs, "--out", str(tmp_path / "f")]) == 0
    written = sorted((tmp_path / "f").glob("*.pdf"))
    assert [p.stem for p in written] == sorted(
        f"{k}_parity"
        for k in ("training", "ponder_vs_difficulty", "accuracy_vs_ponder", "ponder_distribution")
    )
    assert str(tmp_path / "f" / "training_parity.pdf") in capsys.readouterr().out
    # the same runs give byte-identical files (no creation date): make sees no change
    full = {p.name: p for p in figure_paths}
    assert all(p.read_bytes() == full[p.name].read_bytes() for p in written)


def test_cli_figures_reports_a_bad_file(tmp_path, capsys):
    run_dir = write_run(tmp_path, "parity", EXPERIMENTS["parity"][0], seed=0, n_examples=10)
    (run_dir / "eval.json").write_text("[]")
    assert main(["figures", "--results", str(tmp_path), "--out", str(tmp_path / "f")]) == 2
    assert f"{run_dir / 'eval.json'}: expected a JSON object" in capsys.readouterr().err


def test_run_table_reads_back_the_fixture(runs, results):
    from halting.report.runs import run_table

    table = run_table(runs)
    assert len(table) == 18 and set(table["seed"]) == {0, 1}
    row = table[
        (table["task"] == "addition")
        & (table["experiment"] == "ut_act_tau1e-3")
        & (table["seed"] == 1)
    ].iloc[0]
    ev = json.loads((results / "addition" / "ut_act_tau1e-3" / "seed1" / "eval.json").read_text())
    assert row["headline_value"] == ev["learned"]["accuracy_sequence"]
    assert row["steps_mean"] == ev["learned"]["steps_mean"]
    assert pd.isna(row["maze_size"])
