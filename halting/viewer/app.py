"""Streamlit inference viewer: `halting view`, or `streamlit run halting/viewer/app.py -- ARGS`.

Sidebar: the checkpoint (typed, or picked among the runs under the results folder), device and
halting readout. Pages: "Inference" (maze grids, ponder heatmaps and a step slider; parity and
addition input editors with per-step halting) and "Training" (metrics.csv curves, config).
Computation lives in `halting.viewer.render`; this file only lays the page out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

import halting
from halting.config import HEADLINE, max_ponder_of
from halting.data import toy
from halting.data.grid import path_moves
from halting.report.runs import RunFormatError, read_json
from halting.training.runlog import status_of
from halting.viewer import render as vr

SERIES_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00")  # Okabe-Ito
MODES = {"learned halting": "eval", "all M steps (max)": "max"}
CSS = """<style>
img {image-rendering: pixelated;}
.legend span.sw {display:inline-block;width:0.9em;height:0.9em;border-radius:2px;
  vertical-align:-0.1em;margin:0 0.3em 0 0.9em;border:1px solid #8884;}
</style>"""


def script_args() -> argparse.Namespace:
    """Options after `--` of `streamlit run` (only when Streamlit runs this very file)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--results", default="results")
    argv = sys.argv[1:] if Path(sys.argv[0]).resolve() == Path(__file__).resolve() else []
    return parser.parse_known_args(argv)[0]


def stamp(path: str) -> tuple[int, int]:
    """(mtime, size) of a file: part of cache keys, so a rewritten checkpoint reloads."""
    info = Path(path).stat()
    return info.st_mtime_ns, info.st_size


# --- cached loading ---------------------------------------------------------------------------


@st.cache_resource(max_entries=4, show_spinner="Loading checkpoint ...")
def load_checkpoint(path: str, file_stamp: tuple, device: str):
    return halting.load_model(path, map_location=device)


@st.cache_data(ttl=10, show_spinner=False)
def find_runs(root: str) -> list[str]:
    return vr.find_checkpoints(root)


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
        return run_file(str(path), stamp(str(path)))
    except RunFormatError as exc:
        st.error(str(exc))
        return None


@st.cache_data(max_entries=4, show_spinner="Loading mazes ...")
def maze_split(root: str, split: str) -> dict:
    from halting.data.maze import load_maze_split

    data = load_maze_split(root, split)
    return {
        "inputs": data.inputs,
        "labels": data.labels,
        "size": int(data.size),
        "difficulty": path_moves(data.labels),
    }


@st.cache_data(max_entries=64, show_spinner=False)
def maze_trace(_model, model_key: tuple, inputs: np.ndarray, mode: str, seed: int) -> vr.MazeTrace:
    return vr.run_maze(_model, inputs, mode, seed)


@st.cache_data(max_entries=16, show_spinner="Scoring a random batch ...")
def by_difficulty(
    _model, model_key: tuple, task: str, config: dict, size: int, seed: int, mode: str
) -> pd.DataFrame:
    if task == "parity":
        return vr.parity_by_difficulty(_model, config, size, seed, mode)
    return vr.addition_by_difficulty(_model, config, size, seed, mode)


# --- small pieces ------------------------------------------------------------------------------


def run_seed(info: dict) -> int:
    """The run's config seed, which PonderNet's sampled halting is seeded with (as in evaluate)."""
    return int(info["config"].get("seed", 0))


def badge(ok: bool, name: str) -> str:
    if ok:
        return f":green-badge[:material/check: {name}]"
    return f":red-badge[:material/close: not {name}]"


def legend() -> None:
    items = "".join(
        f"<span class='sw' style='background:{vr.hex_colour(c)}'></span>{n}"
        for c, n in zip(vr.PALETTE[1:], vr.TOKEN_NAMES[1:])
    )
    frame = (
        f"<span class='sw' style='background:white;border:3px solid "
        f"{vr.hex_colour(vr.ERROR_RGB)}'></span>wrong cell"
    )
    st.markdown(f"<div class='legend'>{items}{frame}</div>", unsafe_allow_html=True)


def picture(where, image: np.ndarray, caption: str | None = None) -> None:
    """An image filling its column, sent as PNG (JPEG would smear the cell edges)."""
    where.image(image, caption=caption, width="stretch", output_format="PNG")


def colourbar(cmap: str, low: str, high: str, what: str) -> None:
    picture(st, vr.colourbar_rgb(cmap, 256, 12))
    st.caption(f"{low} ⟶ {high} {what}")


def chart(
    frame: pd.DataFrame,
    mark: str = "bar",
    x_title: str | None = None,
    y_title: str = "",
    share: bool = False,
    zero: bool = True,
    colours: tuple[str, ...] = SERIES_COLOURS,
    height: int = 240,
) -> None:
    """Each column of `frame` against its index, as grouped bars or lines; `share` puts the
    y axis on 0-100 %."""
    series = [str(c) for c in frame.columns]
    data = frame.set_axis(series, axis=1).rename_axis("x").reset_index()
    data = data.melt("x", var_name="series", value_name="y").dropna()
    x_title = x_title or frame.index.name or ""
    colour = alt.Color(
        "series:N",
        sort=series,
        title=None,
        scale=alt.Scale(domain=series, range=list(colours[: len(series)])),
        legend=alt.Legend(orient="right") if len(series) > 1 else None,
    )
    y = alt.Y(
        "y:Q",
        title=y_title,
        axis=alt.Axis(format=".0%" if share else "~r"),
        scale=alt.Scale(domain=[0, 1]) if share else alt.Scale(zero=zero),
    )
    tooltip = [
        alt.Tooltip("x", title=x_title or "x"),
        alt.Tooltip("series", title="series"),
        alt.Tooltip("y:Q", title=y_title or "value", format=".4~g"),
    ]
    base = alt.Chart(data)
    if mark == "bar":
        plot = base.mark_bar().encode(
            x=alt.X("x:O", title=x_title, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("series:N", sort=series),
            y=y,
            color=colour,
            tooltip=tooltip,
        )
    else:
        whole = pd.api.types.is_integer_dtype(frame.index)
        axis = alt.Axis(format="~r", tickMinStep=1) if whole else alt.Axis(format="~r")
        plot = base.mark_line(point=len(data) <= 64).encode(
            x=alt.X("x:Q", title=x_title, axis=axis), y=y, color=colour, tooltip=tooltip
        )
    st.altair_chart(plot, width="stretch", height=height)


def halting_caption(criterion: str) -> str:
    if criterion == "pondernet":
        return "p_n the halting distribution, λ_n PonderNet's conditional halting probability"
    return "p_n the halting distribution (weight of step n's output), h_n the halting probability"


def halting_chart(p: np.ndarray, halt_prob: np.ndarray | None, criterion: str) -> None:
    """Bar chart of one unit's halting distribution p_n (and its halting probability h_n, or
    PonderNet's lambda_n) per ponder step."""
    frame = pd.DataFrame({"p_n": p}, index=pd.Index(np.arange(1, len(p) + 1), name="ponder step n"))
    if halt_prob is not None:
        frame["λ_n" if criterion == "pondernet" else "h_n"] = halt_prob
    chart(frame, share=True, height=280)


# --- maze --------------------------------------------------------------------------------------


def maze_example(
    ckpt: str, info: dict, defaults: argparse.Namespace
) -> tuple[dict, str, int] | None:
    """Sidebar: dataset folder, split and example; None (with an error shown) if unusable."""
    side = st.sidebar
    data_key = f"data_dir:{ckpt}"  # each checkpoint defaults to its own dataset
    st.session_state.setdefault(data_key, defaults.data_dir or vr.default_data_dir(info))
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
    scores = vr.maze_scores(inputs, labels, trace.prediction)
    px, M, walls = vr.cell_pixels(data["size"]), trace.max_steps, vr.wall_mask(inputs)
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
    picture(c1, vr.grid_rgb(inputs, px), "Input")
    picture(c2, vr.grid_rgb(labels, px), "Label (canonical shortest path)")
    picture(c3, vr.grid_rgb(trace.prediction, px, scores["errors"] if mark else None), "Prediction")
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
    errors = vr.cell_errors(labels, at_n) if mark else None
    picture(a, vr.grid_rgb(at_n, px, errors), f"Output of step {step}")
    if trace.per_cell:
        with b:
            picture(
                st,
                vr.heatmap_rgb(trace.cumulative_halting(step), 0, 1, "magma", px, walls),
                f"P(halted by step {step}) per cell",
            )
            colourbar("magma", "0", "1", "(walls dimmed)")
        with c:
            picture(
                st, vr.heatmap_rgb(trace.steps, 1, M, "viridis", px, walls), "Ponder steps per cell"
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
        chart(vr.step_accuracy(trace.step_predictions, labels), "line", share=True)
    if right is not None:
        with right:
            st.caption("Halting distribution p_n, mean over the non-wall cells")
            halting_chart(vr.mean_halting(trace, ~walls.ravel()), None, info["criterion"])


# --- parity and addition ---------------------------------------------------------------------


def new_random_input(task: str, key: str, config: dict, k: int | None = None) -> None:
    """Button callback: a fresh random input in the editor `key`."""
    draw = st.session_state.get("draws", 0) + 1
    st.session_state["draws"] = draw
    if task == "parity":
        layout = config.get("parity_layout", "random")
        x = toy.parity_batch(draw, 0, 1, int(config["bits"]), layout, k_min=k, k_max=k)["x"][0]
        st.session_state[key] = vr.format_bits(x)
    else:
        b = toy.addition_batch(
            draw, 0, 1, int(config["sequence_length"]), int(config["max_digits"])
        )
        numbers = vr.decode_numbers(b["x"][0], b["digits"][0])
        st.session_state[key] = " ".join(str(v) for v in numbers)


def parity_page(model, info: dict, model_key: tuple, mode: str) -> None:
    config = info["config"]
    bits = int(config["bits"])
    key = f"bits:{model_key[0]}"
    if key not in st.session_state:
        new_random_input("parity", key, config, max(1, bits // 2))
    left, mid, right = st.columns([4, 1, 1], vertical_alignment="bottom")
    text = left.text_input(
        f"Input: {bits} entries from + - 0",
        key=key,
        help="Characters + - 0 (or 1 for +1), or numbers -1 0 1 separated by "
        "spaces; shorter inputs are padded with 0.",
    )
    k = mid.number_input("Non-zero entries k", 1, bits, max(1, bits // 2), key="k")
    right.button(
        "Random input",
        on_click=new_random_input,
        args=("parity", key, config, int(k)),
        width="stretch",
    )
    try:
        x = vr.parse_bits(text, bits)
    except ValueError as exc:
        st.error(f"Cannot read the input: {exc}")
        return
    trace = vr.run_toy(model, x, mode, run_seed(info))
    pred, target = int(trace.logits.argmax()), vr.parity_target(x)
    st.image(vr.bits_rgb(x, 36), caption="−1 orange · 0 grey · +1 blue", output_format="PNG")
    st.markdown(
        f"#### Prediction {pred} · target {target} &nbsp; {badge(pred == target, 'correct')}"
    )
    m1, m2 = st.columns(2)
    m1.metric("Ponder steps (output unit)", f"{trace.steps[0]:.2f}")
    m2.metric("Non-zero entries k", int((x != 0).sum()))
    unit = "the output unit" + (" (the CLS position)" if trace.p.shape[0] > 1 else "")
    st.caption(f"Halting of {unit} per ponder step: {halting_caption(info['criterion'])}")
    halting_chart(trace.p[0], trace.halt_prob[0], info["criterion"])
    if trace.p.shape[0] > 1:
        st.caption("Ponder steps per position (0 = CLS, then the input entries)")
        chart(
            pd.DataFrame(
                {"steps": trace.steps}, index=pd.Index(np.arange(len(trace.steps)), name="position")
            ),
            y_title="ponder steps",
        )
    difficulty_section(model, info, model_key, mode, "non-zero entries k")


def addition_page(model, info: dict, model_key: tuple, mode: str) -> None:
    config = info["config"]
    T, D = int(config["sequence_length"]), int(config["max_digits"])
    places = int(info["data_meta"]["places"])
    key = f"numbers:{model_key[0]}"
    if key not in st.session_state:
        new_random_input("addition", key, config)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    text = left.text_input(
        f"Input: up to {T} numbers of up to {D} digits",
        key=key,
        help="Separated by spaces, commas or +.",
    )
    right.button(
        "Random input", on_click=new_random_input, args=("addition", key, config), width="stretch"
    )
    try:
        numbers = vr.parse_numbers(text, T, D)
    except ValueError as exc:
        st.error(f"Cannot read the input: {exc}")
        return
    trace = vr.run_toy(model, vr.encode_numbers(numbers, D), mode, run_seed(info))
    targets = vr.addition_targets(numbers, places)  # (T, P)
    predicted = trace.logits.argmax(-1)  # (T, P)
    right_steps = (predicted == targets).all(-1)
    rows = pd.DataFrame(
        {
            "number": numbers,
            "running sum": [vr.decode_places(t) for t in targets],
            "predicted": [vr.decode_places(p) for p in predicted],
            "right": ["—" if t == 0 else ("✓" if r else "✗") for t, r in enumerate(right_steps)],
            "ponder steps": np.round(trace.steps, 2),
        },
        index=pd.Index(np.arange(1, len(numbers) + 1), name="step t"),
    )
    scored = right_steps[1:]
    ok = bool(scored.all()) if len(scored) else False
    st.markdown(
        f"#### Final sum {vr.decode_places(targets[-1])} · predicted "
        f"{vr.decode_places(predicted[-1])} &nbsp; {badge(ok, 'all sums right')}"
    )
    st.dataframe(rows, width="stretch")
    st.caption(
        "No output is scored at t = 1 (Graves 2016, 3.3). Halting distribution p_n per input step:"
    )
    frame = pd.DataFrame(
        trace.p.T,
        columns=[f"t={t}" for t in range(1, len(numbers) + 1)],
        index=pd.Index(np.arange(1, trace.p.shape[1] + 1), name="ponder step n"),
    )
    chart(frame, share=True, height=280)
    difficulty_section(model, info, model_key, mode, "digits of the added number")


def difficulty_section(model, info: dict, model_key: tuple, mode: str, level: str) -> None:
    st.divider()
    st.markdown(f"#### Accuracy and ponder steps by difficulty ({level})")
    a, b = st.columns(2)
    parity = info["task"] == "parity"
    size = int(
        a.number_input(
            "Random examples" + (" per level" if parity else ""),
            8,
            4096,
            64 if parity else 256,
            step=8,
            key="size",
        )
    )
    seed = int(b.number_input("Seed", 0, 10**6, 0, key="seed"))
    table = by_difficulty(model, model_key, info["task"], info["config"], size, seed, mode)
    left, right = st.columns(2)
    with left:
        chart(table[["accuracy"]], y_title="accuracy", share=True)
    with right:
        chart(table[["mean steps"]], y_title="mean ponder steps")
    st.dataframe(
        table.style.format({"accuracy": "{:.1%}", "mean steps": "{:.2f}"}), width="stretch"
    )


# --- training ----------------------------------------------------------------------------------


def training_page(info: dict, ckpt: str) -> None:
    run_dir = vr.run_dir_of(ckpt)
    st.markdown(f"#### Training of `{run_dir}`")
    status = status_of(run_dir)
    if status is not None:  # from train.log: complete, paused, failed, killed or running
        show = st.success if status.state == "complete" else st.warning
        show(f"Run status: {status}", icon="✅" if status.state == "complete" else "⚠️")
    path = vr.metrics_file(run_dir)
    frame = None if path is None else read_run_file(path)
    if path is None:
        st.warning(f"No metrics.csv or train_metrics.csv in {run_dir}.")
    if frame is not None:
        names = vr.metric_names(frame)
        task = info.get("task", "")
        wanted = ["train/loss_total", f"val/{HEADLINE.get(task, 'accuracy')}", "val/steps"]
        chosen = st.multiselect(
            "Metrics", names, default=[n for n in wanted if n in names], key=f"metrics:{ckpt}"
        )
        weight = st.slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="smoothing")
        columns = st.columns(2)
        for i, name in enumerate(chosen):
            with columns[i % 2]:
                st.caption(name)
                chart(
                    vr.curve(frame, name, weight),
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
            unused = vr.unused_fields(config)
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


# --- the page ----------------------------------------------------------------------------------


def saved_hyper_parameters(path: str) -> dict | None:
    """A readable checkpoint's hyper_parameters, even when its model cannot be rebuilt."""
    from halting.training.checkpoint import load_checkpoint as read

    try:
        return dict(read(path)["hyper_parameters"])
    except Exception:
        return None


def pick_run() -> None:
    """Selectbox callback: the picked run becomes the checkpoint path."""
    if st.session_state["run_pick"]:
        st.session_state["checkpoint"] = st.session_state["run_pick"]


def sidebar(defaults: argparse.Namespace) -> tuple[str, str, str, str]:
    """Page, checkpoint path, device and forward mode chosen in the sidebar."""
    side = st.sidebar
    side.title("halting viewer")
    page = side.radio("Page", ["Inference", "Training"], horizontal=True, key="page")
    st.session_state.setdefault("results_root", defaults.results)
    runs = find_runs(side.text_input("Results folder", key="results_root"))
    st.session_state.setdefault("checkpoint", defaults.checkpoint or (runs[0] if runs else ""))
    if runs:
        side.selectbox(
            f"Runs found ({len(runs)})",
            [""] + runs,
            key="run_pick",
            format_func=lambda r: r or "—",
            on_change=pick_run,
        )
    ckpt = side.text_input("Checkpoint", key="checkpoint", placeholder="run/final.ckpt")
    device = side.selectbox("Device", vr.available_devices(), key="device")
    mode = side.radio(
        "Halting",
        list(MODES),
        key="mode",
        help="learned: each unit stops where its criterion says; max: every unit "
        "runs all M steps and step M is read out",
    )
    return page, ckpt.strip(), device, MODES[mode]


def main() -> None:
    st.set_page_config(
        page_title="halting viewer", page_icon=":material/psychology:", layout="wide"
    )
    st.markdown(CSS, unsafe_allow_html=True)
    defaults = script_args()
    page, ckpt, device, mode = sidebar(defaults)
    if not ckpt:
        st.info(
            "Type a checkpoint path in the sidebar (e.g. results/maze/<experiment>/seed0/"
            "final.ckpt), or pick one of the runs found under the results folder."
        )
        return
    try:
        model_key = (ckpt, stamp(ckpt), device)
        model, info = load_checkpoint(*model_key)
    except Exception as exc:  # missing file, not a checkpoint, wrong weights: no traceback
        st.error(f"Cannot load checkpoint {ckpt!r}: {type(exc).__name__}: {exc}")
        if page == "Training":  # the curves and config need no model (e.g. older code)
            hparams = saved_hyper_parameters(ckpt)
            if hparams is not None:
                training_page(hparams, ckpt)
        return
    M = max_ponder_of(info["model_type"], info["config"])
    st.sidebar.caption(
        f"**{info['task']}** · {info['model_type']} · {info['criterion']} · "
        f"M = {M} · step {info.get('global_step')}"
    )
    st.subheader(f"{info['task'].capitalize()} · {info['model_type']} · {info['criterion']}")
    if page == "Training":
        training_page(info, ckpt)
    elif info["task"] == "maze":
        maze_page(model, info, model_key, mode, defaults)
    elif info["task"] == "parity":
        parity_page(model, info, model_key, mode)
    else:
        addition_page(model, info, model_key, mode)


main()
