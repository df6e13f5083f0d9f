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

from halting import report  # noqa: E402
from halting.cli import main  # noqa: E402
from halting.runs import RunFormatError  # noqa: E402

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
        half = 12.7062047 * np.std(values, ddof=1) / math.sqrt(2)  # t_{0.975, 1}
        assert row.headline_ci_high == pytest.approx(np.mean(values) + half, rel=1e-6)
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
    assert "\\begin{tabular}{lllllrlrrrll}" in tex
    assert tex.index("\\toprule") < tex.index("\\midrule") < tex.index("\\bottomrule")
    body = tex[tex.index("\\midrule") : tex.index("\\bottomrule")]
    rows = [line for line in body.splitlines() if line.endswith("\\\\")]
    assert len(rows) == N_EXPERIMENTS
    assert all(line.count(" & ") == len(report.COLUMNS) - 1 for line in rows)
    assert body.count("\\midrule") == 3  # after the header, then between the three tasks
    assert "rnn\\_act\\_tau1e-3" in tex and "$\\tau=0.001$" in tex and "$K=6$" in tex
    assert "$\\beta=0.01$" in tex and "$\\pm$" in tex
    for forbidden in ("τ", "±", "β"):
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
    assert all("±" not in r["value"] for r in rows)
    assert (table["headline_ci_low"] == table["headline_mean"]).all()


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
