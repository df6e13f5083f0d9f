"""The tau-sweep figure: which runs form a sweep, and that it draws their per-tau means."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_runs import write_run  # noqa: E402

from halting.report import (
    figures,  # noqa: E402
    style,  # noqa: E402
)
from halting.report.plots_common import NoData  # noqa: E402
from halting.report.plots_sweep import tau_sweep, tau_sweeps  # noqa: E402
from halting.report.runs import load_runs  # noqa: E402

TAUS = (1e-4, 1e-3, 1e-2, 1e-1)


def _write(root: Path, name: str, tau: float, seeds=(0, 1), **config) -> None:
    for seed in seeds:
        run_dir = write_run(root, "parity", (name, "act_rnn", "act", tau, 0.9, 3.0), seed)
        meta_path = run_dir / "run.json"
        meta = json.loads(meta_path.read_text())
        meta["config"].update(seed=seed, bits=16, **config)
        meta_path.write_text(json.dumps(meta))


@pytest.fixture
def sweep_runs(tmp_path):
    for tau in TAUS:
        _write(tmp_path, f"parity16_tau_{tau:g}", tau)
    # same tau as one of the sweep, another data distribution: not part of the sweep
    _write(tmp_path, "parity16_extrap_act", 1e-3, parity_extrapolate=True)
    write_run(tmp_path, "parity", ("parity16_pondernet", "act_rnn", "pondernet", 0.01, 0.9, 4.0), 0)
    return load_runs(tmp_path)


def test_a_sweep_is_act_runs_differing_only_in_tau_and_seed(sweep_runs):
    (sweep,) = tau_sweeps(sweep_runs, "parity")
    assert list(sweep) == list(TAUS)
    assert all(len(rs) == 2 for rs in sweep.values())
    experiments = {r.experiment for rs in sweep.values() for r in rs}
    assert "parity16_extrap_act" not in experiments and "parity16_pondernet" not in experiments
    assert tau_sweeps(sweep_runs, "maze") == []


def test_the_figure_draws_the_mean_over_seeds_per_tau(sweep_runs):
    import matplotlib.pyplot as plt

    (sweep,) = tau_sweeps(sweep_runs, "parity")
    with style.context():
        fig = tau_sweep(sweep_runs, "parity")
        try:
            acc_ax, steps_ax = fig.axes[:2]
            assert acc_ax.get_xscale() == "log" and acc_ax.get_xlabel() == "time penalty τ"
            (acc_line,) = acc_ax.get_lines()
            (steps_line,) = steps_ax.get_lines()
            np.testing.assert_allclose(acc_line.get_xdata(), TAUS)
            np.testing.assert_allclose(
                acc_line.get_ydata(),
                [100 * np.mean([r.headline_value for r in sweep[t]]) for t in TAUS],
            )
            np.testing.assert_allclose(
                steps_line.get_ydata(), [np.mean([r.steps_mean for r in sweep[t]]) for t in TAUS]
            )
            assert acc_ax.get_ylabel() == "accuracy (%)"
        finally:
            plt.close(fig)


def test_fewer_than_three_taus_draw_no_sweep(tmp_path):
    for tau in TAUS[:2]:
        _write(tmp_path, f"parity16_tau_{tau:g}", tau)
    runs = load_runs(tmp_path)
    assert tau_sweeps(runs, "parity") == []
    with pytest.raises(NoData, match="differ only in tau"):
        tau_sweep(runs, "parity")


def test_make_figures_writes_the_sweep(sweep_runs, tmp_path):
    root = sweep_runs[0].path.parents[2]
    paths = figures.make_figures(root, tmp_path / "figures")
    assert tmp_path / "figures" / "tau_sweep_parity.pdf" in paths


def test_png_export_of_named_figures_for_web_pages(sweep_runs, tmp_path, capsys):
    """`halting figures --format png --only ...`: what docs/results.md embeds."""
    from halting.cli import main

    root = sweep_runs[0].path.parents[2]
    out = tmp_path / "png"
    png = ["figures", "--results", str(root), "--out", str(out), "--format", "png"]
    assert main([*png, "--dpi", "50", "--only", "tau_sweep_parity", "training_parity"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["tau_sweep_parity.png", "training_parity.png"]
    assert (out / "tau_sweep_parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    first = (out / "tau_sweep_parity.png").read_bytes()
    figures.make_figures(root, out, fmt="png", only=["tau_sweep_parity"], dpi=50)
    assert (out / "tau_sweep_parity.png").read_bytes() == first  # no timestamp inside
    assert main([*png, "--only", "tau_sweep_maze"]) == 2
    err = capsys.readouterr().err
    assert "--only: no figure tau_sweep_maze was drawn" in err
    assert "not a figure of these runs (theirs: training_parity, " in err
    assert main([*png, "--only", "maze_hard_accuracy"]) == 2  # a figure, but no 30x30 maze runs
    assert "no figure maze_hard_accuracy was drawn: no data" in capsys.readouterr().err
    with pytest.raises(ValueError, match="figure format must be one of pdf, png, got 'svg'"):
        figures.make_figures(root, out, fmt="svg")


def test_only_draws_just_the_figures_asked_for(sweep_runs):
    import matplotlib.pyplot as plt

    with style.context():
        drawn = list(figures.iter_figures(sweep_runs, only={"tau_sweep_parity"}))
    for _, fig in drawn:
        plt.close(fig)
    assert [name for name, _ in drawn] == ["tau_sweep_parity"]
