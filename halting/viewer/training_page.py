"""The training page: the run's status from train.log, its logged metrics as smoothed curves,
its config (without the fields that do not apply) and checkpoint metadata, run.json and eval.json.
It needs no model, so it also shows a checkpoint whose model cannot be rebuilt."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from halting.report.runs import RunFormatError, read_json
from halting.tasks import TASKS
from halting.training.runlog import status_of
from halting.viewer import run_files
from halting.viewer.widgets import chart


@st.cache_data(max_entries=16, show_spinner=False)
def run_file(path: str, file_stamp: tuple) -> pd.DataFrame | dict:
    """A run's metrics CSV as a table or its run.json/eval.json as a dict, re-read only when
    the file changes (`file_stamp`); a malformed file raises RunFormatError naming it."""
    if path.endswith(".json"):
        return read_json(Path(path))
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as err:  # pandas' parser and empty-file errors are ValueErrors
        raise RunFormatError(f"{path}: cannot read CSV ({err})") from err


def read_run_file(path: Path) -> pd.DataFrame | dict | None:
    """`run_file` of `path`, or None with its error shown on the page (no traceback)."""
    try:
        return run_file(str(path), run_files.stamp(str(path)))
    except RunFormatError as exc:
        st.error(str(exc))
        return None


def training_page(info: dict, ckpt: str) -> None:
    run_dir = run_files.run_dir_of(ckpt)
    st.markdown(f"#### Training of `{run_dir}`")
    status = status_of(run_dir)
    if status is not None:  # from train.log: complete, paused, failed, killed or running
        show = st.success if status.state == "complete" else st.warning
        show(f"Run status: {status}", icon="✅" if status.state == "complete" else "⚠️")
    path = run_files.metrics_file(run_dir)
    frame = None if path is None else read_run_file(path)
    if path is None:
        st.warning(f"No metrics.csv or train_metrics.csv in {run_dir}.")
    if frame is not None:
        names = run_files.metric_names(frame)
        task = info.get("task", "")
        wanted = [
            "train/loss_total",
            f"val/{TASKS[task].headline if task in TASKS else 'accuracy'}",
            "val/steps",
        ]
        chosen = st.multiselect(
            "Metrics", names, default=[n for n in wanted if n in names], key=f"metrics:{ckpt}"
        )
        weight = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="smoothing")
        columns = st.columns(2)
        for i, name in enumerate(chosen):
            with columns[i % 2]:
                st.caption(name)
                chart(
                    run_files.curve(frame, name, weight),
                    "line",
                    zero=False,
                    colours=("#a6cee3", "#1f78b4"),
                )
        st.caption(f"{path} · {len(frame)} rows")
    left, right = st.columns(2)
    with left:
        st.markdown("##### Config")
        config = dict(info.get("config", {}))
        if not st.toggle("Show fields that do not apply", False, key="all_fields"):
            unused = run_files.unused_fields(config)
            config = {k: v for k, v in config.items() if k not in unused}
        st.dataframe(
            pd.DataFrame(
                {"value": [json.dumps(v) for v in config.values()]},
                index=pd.Index(list(config), name="field"),
            ),
            height=min(600, 35 * (len(config) + 1) + 3),
            width="stretch",
        )
    with right:
        st.markdown("##### Checkpoint")
        st.json(
            {
                k: info.get(k)
                for k in (
                    "task",
                    "model_type",
                    "criterion",
                    "code_version",
                    "global_step",
                    "epoch",
                    "ema",
                    "data_meta",
                )
            },
            expanded=True,
        )
        for name in ("run.json", "eval.json"):
            if (run_dir / name).is_file():
                with st.expander(name):
                    data = read_run_file(run_dir / name)
                    if data is not None:
                        st.json(data)
