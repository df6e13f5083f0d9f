"""summary.pdf / .csv / .tex from fixture result folders."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_runs import (  # noqa: E402
    NO_PDFTOPPM,
    PDFTOPPM,
    assert_pdf_basics,
    image_is_blank,
    pdf_page_count,
    render_pdf_pages,
    write_results,
)

from halting.cli import main  # noqa: E402
from halting.report import summary as report  # noqa: E402
from halting.report.runs import RunFormatError, load_runs  # noqa: E402
from halting.report.stats import difficulty_rho  # noqa: E402

N_EXPERIMENTS = 9  # fixture: 3 tasks x 3 experiments, 2 seeds each
N_FIGURES = 16  # 4 per task, 3 maze example figures, Maze-Hard bars (see test_figures)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    write_results(root)
    return root


@pytest.fixture(scope="module")
def summary(results, tmp_path_factory):
    out = tmp_path_factory.mktemp("summary") / "summary.pdf"
    table = report.write_summary(results, out)
    return out, table


def test_summary_pdf_pages(summary, results):
    out, table = summary
    assert len(table) == N_EXPERIMENTS
    assert_pdf_basics(out)
    assert report.table_pages(N_EXPERIMENTS) == 1
    assert pdf_page_count(out) == report.table_pages(len(table)) + N_FIGURES
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")], "temp file left"


@pytest.mark.skipif(PDFTOPPM is None, reason=NO_PDFTOPPM)
def test_summary_pages_rasterise_non_blank(summary, tmp_path):
    out, _ = summary
    pages = render_pdf_pages(out, tmp_path, dpi=25)
    assert len(pages) == pdf_page_count(out)
    blank = [i + 1 for i, page in enumerate(pages) if image_is_blank(page)]
    assert not blank, f"blank page(s) {blank}"


def test_summary_csv_matches_the_eval_files(summary, results):
    out, table = summary
    csv = pd.read_csv(out.with_suffix(".csv"))
    assert len(csv) == N_EXPERIMENTS
    assert list(csv.columns) == list(table.columns)
    for row in csv.itertuples(index=False):
        evals = [
            json.loads(p.read_text())
            for p in sorted((results / row.task / row.experiment).glob("seed*/eval.json"))
        ]
        values = [e["learned"][e["headline"]] for e in evals]
        assert row.seeds == len(values) == 2
        assert row.headline == evals[0]["headline"]
        assert row.headline_mean == pytest.approx(np.mean(values))
        assert row.headline_sd == pytest.approx(np.std(values, ddof=1))
        # two seeds: no interval (t_{0.975,1} = 12.7 spans more than [0, 1]); their values
        assert math.isnan(row.headline_ci_low) and math.isnan(row.headline_ci_high)
        listed = [float(v) for v in row.headline_seed_values.split()]
        assert listed == pytest.approx(values, abs=1e-6)
        rhos = [
            difficulty_rho(pd.read_parquet(p))
            for p in sorted((results / row.task / row.experiment).glob("seed*/per_example.parquet"))
        ]
        assert [float(v) for v in row.rho_seed_values.split()] == pytest.approx(
            rhos, abs=1e-6, nan_ok=True
        )
        if "fixed" in row.experiment:  # constant steps: rho undefined
            assert math.isnan(row.rho_mean)
        else:
            assert row.rho_mean == pytest.approx(np.mean(rhos)) and 0 < row.rho_mean <= 1
        assert math.isnan(row.rho_ci_low) and math.isnan(row.rho_ci_high)
        assert row.steps_mean == pytest.approx(np.mean([e["learned"]["steps_mean"] for e in evals]))
        metas = [
            json.loads(p.read_text())
            for p in sorted((results / row.task / row.experiment).glob("seed*/run.json"))
        ]
        if row.task == "addition":  # the fixture leaves train_seconds null there
            assert math.isnan(row.train_seconds_mean)
        else:
            seconds = [m["train_seconds"] for m in metas]
            assert row.train_seconds_mean == pytest.approx(np.mean(seconds))
        assert row.code_version == metas[0]["code_version"]
    maze = csv[csv["task"] == "maze"]
    assert (maze["data_manifest"] == "9f2c4e1ab37d5c8e0f61a2b3c4d5e6f7").all()
    assert (maze["maze_size"] == 30).all()
    assert list(csv["task"].drop_duplicates()) == ["maze", "parity", "addition"]


def test_summary_tex_is_a_booktabs_tabular(summary):
    out, table = summary
    tex = out.with_suffix(".tex").read_text()
    assert "\\begin{tabular}{lllllrlrrrrll}" in tex
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    body = tex[tex.index("\\midrule") : tex.index("\\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith("\\\\")]
    assert len(rows) == N_EXPERIMENTS
    assert all(line.count(" & ") == len(report.COLUMNS) - 1 for line in rows)
    assert body.count("\\midrule") == 3  # after the header, then between the three tasks
    assert "rnn\\_act\\_tau1e-3" in tex and "$\\tau=0.001$" in tex and "$K=6$" in tex
    assert "$\\beta=0.01$" in tex and "$\\rho$" in tex
    assert "% Mean over seeds; [95% Student-t interval over seeds" in tex  # the rule
    assert " & 43.4 (41.2, 45.6) & " in tex  # two seeds: their values, not an interval
    for forbidden in ("τ", "±", "β", "ρ"):
        assert forbidden not in tex.split("\n", 1)[1]


def test_tex_helpers():
    assert report.tex_escape("a_b & 50% #1 {x}") == r"a\_b \& 50\% \#1 \{x\}"
    assert report._tex_penalty("τ=1e-4") == r"$\tau=10^{-4}$"
    assert report._tex_penalty("β=2.5e-3") == r"$\beta=2.5\times 10^{-3}$"
    assert report._tex_penalty("") == "--"


def test_format_seconds():
    assert [report.format_seconds(s) for s in (42, 600, 5400, 36000, float("nan"))] == [
        "42 s",
        "10.0 min",
        "90.0 min",
        "10.0 h",
        "–",
    ]


def test_long_table_takes_several_pages(results, tmp_path, monkeypatch):
    monkeypatch.setattr(report, "ROWS_PER_PAGE", 2)
    assert report.table_pages(N_EXPERIMENTS) == 5 and report.table_pages(0) == 1
    assert report.table_pages(4) == 2 and report.table_pages(5) == 3
    dirs = sorted(results.glob("parity/*/seed0"))
    out = tmp_path / "s.pdf"
    table = report.write_summary(None, out, run_dirs=dirs)
    assert len(table) == 3
    assert pdf_page_count(out) == 2 + 4  # 3 rows over 2 table pages, 4 parity figures
    if shutil.which("pdftotext"):
        import subprocess

        text = subprocess.run(
            ["pdftotext", "-f", "2", "-l", "2", str(out), "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "page 2 of 2" in text and "rnn_pondernet_beta1e-2" in text
        assert "rnn_act_tau1e-3" not in text


def test_one_seed_has_no_sd(tmp_path):
    write_results(tmp_path / "r", tasks=("parity",), seeds=(3,))
    table = report.write_summary(tmp_path / "r", tmp_path / "s.pdf")
    assert (table["seeds"] == 1).all() and table["headline_sd"].isna().all()
    rows = report.format_table(table)
    assert all(r["value"].replace(".", "").isdigit() for r in rows)  # "94.9": the mean only
    assert table["headline_ci_low"].isna().all() and table["headline_ci_high"].isna().all()


def test_format_estimate():
    nan = float("nan")
    assert report.format_estimate(0.883, nan, nan, "0.956 0.809", 100, 1) == "88.3 (95.6, 80.9)"
    assert report.format_estimate(0.883, 0.80, 1.0, "0.9 0.8 0.95", 100, 1) == (
        "88.3 [80.0, 100.0]"
    )
    assert report.format_estimate(0.5, nan, nan, "0.5") == "0.50"
    assert report.format_estimate(0.5, nan, nan, "0.5 nan") == "0.50 (0.50, –)"
    assert report.format_estimate(nan, nan, nan, "nan nan") == "–"


def _set_accuracies(root: Path, experiment: str, values: list[float]) -> None:
    for seed, value in enumerate(values):
        path = root / "parity" / experiment / f"seed{seed}" / "eval.json"
        ev = json.loads(path.read_text())
        ev["learned"]["accuracy"] = value
        path.write_text(json.dumps(ev))


def test_two_seeds_list_their_values_instead_of_an_interval(tmp_path):
    write_results(tmp_path / "r", tasks=("parity",), seeds=(0, 1))
    _set_accuracies(tmp_path / "r", "rnn_act_tau1e-3", [0.957, 0.809])
    table = report.write_summary(tmp_path / "r", tmp_path / "s.pdf")
    row = table[table["experiment"] == "rnn_act_tau1e-3"].iloc[0]
    assert row["headline_mean"] == pytest.approx(0.883)
    assert math.isnan(row["headline_ci_low"]) and math.isnan(row["headline_ci_high"])
    assert row["headline_seed_values"] == "0.957 0.809"
    csv = pd.read_csv(tmp_path / "s.csv")
    assert csv["headline_ci_low"].isna().all() and csv["headline_ci_high"].isna().all()
    assert csv["rho_ci_low"].isna().all() and csv["rho_ci_high"].isna().all()
    value = report.format_table(table)[list(table["experiment"]).index("rnn_act_tau1e-3")]["value"]
    assert value == "88.3 (95.7, 80.9)"  # the mean, then each seed's value


def test_three_seeds_give_a_t_interval_clipped_at_one(tmp_path):
    write_results(tmp_path / "r", tasks=("parity",), seeds=(0, 1, 2))
    values = [0.99, 1.0, 0.97]
    _set_accuracies(tmp_path / "r", "rnn_act_tau1e-3", values)
    table = report.write_summary(tmp_path / "r", tmp_path / "s.pdf")
    row = table[table["experiment"] == "rnn_act_tau1e-3"].iloc[0]
    half = 4.3026527 * np.std(values, ddof=1) / math.sqrt(3)  # t_{0.975,2} * sd / sqrt(3)
    assert np.mean(values) + half > 1.02
    assert row["headline_ci_low"] == pytest.approx(np.mean(values) - half, rel=1e-6)
    assert row["headline_ci_high"] == 1.0  # clipped to the accuracy's range
    value = report.format_table(table)[list(table["experiment"]).index("rnn_act_tau1e-3")]["value"]
    assert value == f"98.7 [{100 * (np.mean(values) - half):.1f}, 100.0]"
    rho = table[["rho_ci_low", "rho_ci_high"]].to_numpy()
    finite = rho[np.isfinite(rho).all(axis=1)]
    assert len(finite) and (finite >= -1).all() and (finite <= 1).all()


def test_difficulty_rho_hand_computed():
    def frame(difficulty, steps, mode="learned"):
        n = len(steps)
        return pd.DataFrame(
            {
                "example_id": range(n),
                "mode": mode,
                "difficulty": difficulty,
                "correct": True,
                "steps_mean": steps,
            }
        )

    # distinct ranks: d = rank differences (1, -1, 1, -1, 0); rho = 1 - 6*4 / (5*(25-1)) = 0.8
    learned = frame([1, 2, 3, 4, 5], [2.0, 1.0, 4.0, 3.0, 5.0])
    other = frame([5, 4, 3, 2, 1], [1.0, 2.0, 3.0, 4.0, 5.0], mode="max_steps")
    assert difficulty_rho(pd.concat([learned, other])) == pytest.approx(0.8)
    # ties take mean ranks: (1.5, 1.5, 3, 4) vs (1, 2, 3, 4) -> 4.5 / sqrt(4.5 * 5) = sqrt(0.9)
    assert difficulty_rho(frame([1, 1, 2, 3], [1.0, 2.0, 3.0, 4.0])) == pytest.approx(
        math.sqrt(0.9)
    )
    # NaN rows are dropped; reversed order gives -1
    assert difficulty_rho(frame([1, 2, 3, 9], [3.0, 2.0, 1.0, float("nan")])) == pytest.approx(-1)
    for undefined in (
        frame([1, 2, 3], [4.0, 4.0, 4.0]),  # constant steps (fixed depth)
        frame([2, 2, 2], [1.0, 2.0, 3.0]),  # constant difficulty
        frame([1], [1.0]),
        other,  # no learned rows
        None,
    ):
        assert math.isnan(difficulty_rho(undefined))


def test_rho_per_experiment_is_the_mean_over_seeds(results):
    from halting.report.runs import experiment_table

    runs = load_runs(results)
    table = experiment_table(runs)
    row = table[(table["task"] == "parity") & (table["experiment"] == "rnn_act_tau1e-3")].iloc[0]
    rhos = [difficulty_rho(r.per_example) for r in runs if r.key == ("parity", "rnn_act_tau1e-3")]
    assert len(rhos) == 2 and row["rho_mean"] == pytest.approx(np.mean(rhos))


def test_failed_summary_keeps_the_previous_files(results, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(results / "parity" / "rnn_act_tau1e-2", copy / "parity" / "rnn_act_tau1e-2")
    out = tmp_path / "summary.pdf"
    report.write_summary(copy, out)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("summary.*")}
    assert sorted(before) == ["summary.csv", "summary.pdf", "summary.tex"]
    (copy / "parity" / "rnn_act_tau1e-2" / "seed1" / "eval.json").write_text("{")
    with pytest.raises(RunFormatError, match="rnn_act_tau1e-2/seed1/eval.json"):
        report.write_summary(copy, out)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("summary.*")} == before
    assert not list(tmp_path.glob(".summary*"))


def test_no_runs_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no runs found") as err:
        report.write_summary(tmp_path / "empty", tmp_path / "s.pdf")
    assert "<task>/<experiment>/seed<k>/run.json" in str(err.value)
    assert (
        main(["summary", "--results", str(tmp_path / "empty"), "--out", str(tmp_path / "s.pdf")])
        == 2
    )
    assert not (tmp_path / "s.pdf").exists()


def test_cli_summary(results, tmp_path, capsys):
    dirs = [str(p) for p in sorted(results.glob("parity/*/seed0"))]
    out = tmp_path / "deep" / "summary.pdf"
    assert main(["summary", "--runs", *dirs, "--out", str(out)]) == 0
    assert f"{out}: 3 experiment(s)" in capsys.readouterr().out
    csv = pd.read_csv(out.with_suffix(".csv"))
    assert list(csv["seeds"]) == [1, 1, 1]
    assert pdf_page_count(out) == 1 + 4  # table + training, difficulty, accuracy, distribution
