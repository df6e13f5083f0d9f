"""The maze page: an example picked from a dataset split (by index or by shortest-path length),
its input, label and prediction with the wrong cells framed, and its pondering step by step
(each step's own output, halting mass and ponder steps per cell or for the whole puzzle)."""

from __future__ import annotations

import argparse

import numpy as np
import streamlit as st

from halting.data.grid import path_moves
from halting.viewer import images, traces
from halting.viewer.run_files import default_data_dir
from halting.viewer.widgets import (
    badge,
    chart,
    colourbar,
    halting_caption,
    halting_chart,
    legend,
    picture,
    run_seed,
)


@st.cache_data(max_entries=4, show_spinner="Loading mazes ...")
def maze_split(root: str, split: str) -> dict:
    from halting.data.maze_format import load_maze_split

    data = load_maze_split(root, split)
    return {
        "inputs": data.inputs,
        "labels": data.labels,
        "size": int(data.size),
        "difficulty": path_moves(data.labels),
    }


@st.cache_data(max_entries=64, show_spinner=False)
def maze_trace(
    _model, model_key: tuple, inputs: np.ndarray, mode: str, seed: int
) -> traces.MazeTrace:
    return traces.run_maze(_model, inputs, mode, seed)


def maze_example(
    ckpt: str, info: dict, defaults: argparse.Namespace
) -> tuple[dict, str, int] | None:
    """Sidebar: dataset folder, split and example; None (with an error shown) if unusable."""
    side = st.sidebar
    data_key = f"data_dir:{ckpt}"  # each checkpoint defaults to its own dataset
    st.session_state.setdefault(data_key, defaults.data_dir or default_data_dir(info))
    root = side.text_input(
        "Maze dataset folder",
        key=data_key,
        help="HRM-format folder with train/ and test/ (default: the checkpoint's)",
    )
    split = side.selectbox("Split", ["test", "train"], key="split")
    try:
        data = maze_split(root, split)
    except Exception as exc:  # a missing folder, a wrong format: say so on the page
        st.error(f"Cannot load the {split} split of maze dataset {root!r}: {exc}")
        return None
    if data["inputs"].shape[1] != int(info["data_meta"]["seq_len"]):
        st.error(
            f"The dataset's mazes have {data['inputs'].shape[1]} cells but the model was "
            f"trained on {info['data_meta']['seq_len']}."
        )
        return None
    n = len(data["inputs"])
    how = side.radio("Example", ["by index", "pick by difficulty"], key="pick", horizontal=True)
    if how == "by index":
        return data, split, int(side.number_input(f"Index (0-{n - 1})", 0, n - 1, 0, key="index"))
    levels = sorted(set(int(d) for d in data["difficulty"]))
    level = side.select_slider(
        "Shortest path (moves)", levels, value=levels[len(levels) // 2], key="difficulty"
    )
    matches = np.flatnonzero(data["difficulty"] == level)
    k = int(side.number_input(f"Match (1-{len(matches)})", 1, len(matches), 1, key="match"))
    return data, split, int(matches[k - 1])


def maze_page(model, info: dict, model_key: tuple, mode: str, defaults: argparse.Namespace) -> None:
    chosen = maze_example(model_key[0], info, defaults)
    if chosen is None:
        return
    data, split, index = chosen
    inputs, labels = data["inputs"][index], data["labels"][index]
    trace = maze_trace(model, model_key, inputs, mode, run_seed(info))
    scores = traces.maze_scores(inputs, labels, trace.prediction)
    px, M, walls = images.cell_pixels(data["size"]), trace.max_steps, traces.wall_mask(inputs)
    mark = st.session_state.get("mark_errors", True)

    st.markdown(
        f"#### Maze {index} of {split} · shortest path {int(data['difficulty'][index])} "
        f"moves &nbsp; {badge(scores['exact'], 'exact')} "
        f"{badge(scores['valid_optimal'], 'valid-optimal')}"
    )
    m1, m2, m3 = st.columns(3)
    m1.metric("Cell accuracy", f"{scores['cell_accuracy']:.1%}")
    m2.metric("Wrong cells", int(scores["errors"].sum()))
    if trace.per_cell:
        m3.metric(
            "Ponder steps per cell", f"{trace.steps.mean():.2f} mean · {trace.steps.max():.0f} max"
        )
    else:
        m3.metric("Ponder steps (whole puzzle)", f"{trace.steps[0]:.2f}")
    c1, c2, c3 = st.columns(3)
    picture(c1, images.grid_rgb(inputs, px), "Input")
    picture(c2, images.grid_rgb(labels, px), "Label (canonical shortest path)")
    picture(
        c3, images.grid_rgb(trace.prediction, px, scores["errors"] if mark else None), "Prediction"
    )
    left, right = st.columns([5, 1])
    with left:
        legend()
    right.toggle("Mark wrong cells", True, key="mark_errors")

    st.divider()
    st.markdown("#### Pondering")
    step = st.slider(
        "Ponder step n",
        1,
        M,
        trace.steps_run,
        key="step",
        help="The output of ponder step n alone, and the halting mass spent by then",
    )
    a, b, c = st.columns(3)
    at_n = trace.step_predictions[step - 1]
    errors = traces.cell_errors(labels, at_n) if mark else None
    picture(a, images.grid_rgb(at_n, px, errors), f"Output of step {step}")
    if trace.per_cell:
        with b:
            picture(
                st,
                images.heatmap_rgb(trace.cumulative_halting(step), 0, 1, "magma", px, walls),
                f"P(halted by step {step}) per cell",
            )
            colourbar("magma", "0", "1", "(walls dimmed)")
        with c:
            picture(
                st,
                images.heatmap_rgb(trace.steps, 1, M, "viridis", px, walls),
                "Ponder steps per cell",
            )
            colourbar("viridis", "1", str(M), "steps (walls dimmed)")
    else:
        with b:
            halted = float(trace.cumulative_halting(step)[0])
            st.metric(f"P(halted by step {step})", f"{halted:.3f}")
            st.progress(min(1.0, max(0.0, halted)))
            st.caption("The ACT-RNN halts once for the whole puzzle.")
        with c:
            st.caption(halting_caption(info["criterion"]))
            halting_chart(trace.p[0], trace.halt_prob[0], info["criterion"])
    left, right = st.columns(2) if trace.per_cell else (st.container(), None)
    with left:
        st.caption("Accuracy of each ponder step's own output")
        chart(traces.step_accuracy(trace.step_predictions, labels), "line", share=True)
    if right is not None:
        with right:
            st.caption("Halting distribution p_n, mean over the non-wall cells")
            halting_chart(traces.mean_halting(trace, ~walls.ravel()), None, info["criterion"])
