"""Streamlit inference viewer: `halting view`, or `streamlit run halting/viewer/app.py -- ARGS`.

Sidebar: the checkpoint (typed, or picked among the runs under the results folder), device and
halting readout. Pages: "Inference" (maze grids, ponder heatmaps and a step slider; parity and
addition input editors with per-step halting) and "Training" (metrics.csv curves, config).
This script lays out the sidebar and picks the page: the inference page of each task is in
`PAGES` (`halting.viewer.maze_page`, `halting.viewer.toy_pages`), the training page in
`halting.viewer.training_page`; their computation lives in `images`, `traces`, `toy_inputs` and
`run_files` of `halting.viewer`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

import halting
from halting.config import max_ponder_of
from halting.viewer import run_files, traces
from halting.viewer.maze_page import maze_page
from halting.viewer.toy_pages import addition_page, parity_page
from halting.viewer.training_page import training_page

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


# --- cached loading ---------------------------------------------------------------------------


@st.cache_resource(max_entries=4, show_spinner="Loading checkpoint ...")
def load_checkpoint(path: str, file_stamp: tuple, device: str):
    return halting.load_model(path, map_location=device)


@st.cache_data(ttl=10, show_spinner=False)
def find_runs(root: str) -> list[str]:
    return run_files.find_checkpoints(root)


# --- the page ----------------------------------------------------------------------------------


# The inference page of each task: page(model, info, model_key, mode, defaults), where `info` is
# the checkpoint's metadata, `model_key` (checkpoint path, file stamp, device), `mode` "eval" or
# "max" and `defaults` the script's options. The only place that names the tasks.
PAGES = {"maze": maze_page, "parity": parity_page, "addition": addition_page}


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
    device = side.selectbox("Device", traces.available_devices(), key="device")
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
        model_key = (ckpt, run_files.stamp(ckpt), device)
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
    elif info["task"] in PAGES:
        PAGES[info["task"]](model, info, model_key, mode, defaults)
    else:  # a task added without a page of its own (docs/extending.md)
        st.info(f"no inference page for task {info['task']!r}: see its Training page")


main()
