"""`halting view`: start the Streamlit viewer, wrapping `streamlit run halting/viewer/app.py`.

Bound to 127.0.0.1 by default (reach it from another machine with `ssh -L PORT:127.0.0.1:PORT`).
Every `streamlit run` option (`--theme.base dark`, `--server.headless true`, ...) is passed
through, as is anything after `--`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys
from pathlib import Path

VIEWER = Path(__file__).with_name("app.py")


class StreamlitOption(argparse.Action):
    """Collects `--section.name value` into `args.streamlit_options` as (name, value) pairs."""

    def __call__(self, parser, namespace, values, option_string=None):
        pairs = list(getattr(namespace, "streamlit_options", None) or [])
        pairs.append((option_string[2:], values))
        namespace.streamlit_options = pairs


def streamlit_option_names() -> list[str]:
    """Every config option `streamlit run` accepts on its command line ("server.port", ...)."""
    from streamlit import config

    return sorted(
        name
        for name, opt in config.get_config_options().items()
        if "." in name and opt.visibility == "visible" and not opt.deprecated
    )


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument(
        "--checkpoint", default="", help="checkpoint to open (else pick one in the page)"
    )
    parser.add_argument(
        "--data-dir",
        default="",
        help="maze dataset folder (default: the checkpoint's own data_dir)",
    )
    parser.add_argument(
        "--results",
        default="results",
        help="folder searched for runs to pick from (default: results)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open a browser (server.headless true)"
    )
    parser.set_defaults(streamlit_options=[])
    if importlib.util.find_spec("streamlit") is not None:
        for name in streamlit_option_names():
            parser.add_argument(
                f"--{name}", action=StreamlitOption, metavar="VALUE", help=argparse.SUPPRESS
            )
    parser.add_argument(
        "extra", nargs=argparse.REMAINDER, help="after --: further arguments of `streamlit run`"
    )
    parser.epilog = (
        "Any `streamlit run` option is passed through, e.g. --theme.base dark "
        "(see `streamlit run --help`)."
    )


def streamlit_options(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The config options `halting view ARGS` gives `streamlit run`: those passed through, then
    the defaults (--host, --port, ...) of the ones not given."""
    pairs = list(args.streamlit_options)
    given = {name for name, _ in pairs}
    defaults = [
        ("server.address", args.host),
        ("server.port", str(args.port)),
        ("browser.gatherUsageStats", "false"),
        ("client.toolbarMode", "minimal"),
    ]
    if args.no_browser:
        defaults.append(("server.headless", "true"))
    return pairs + [(name, value) for name, value in defaults if name not in given]


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The `python -m streamlit run ...` command line of `halting view ARGS`."""
    pairs = streamlit_options(args)
    flags = [part for name, value in pairs for part in (f"--{name}", str(value))]
    extra = list(args.extra)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    script = ["--results", args.results]
    if args.checkpoint:
        script += ["--checkpoint", str(Path(args.checkpoint).resolve())]
    if args.data_dir:
        script += ["--data-dir", str(Path(args.data_dir).resolve())]
    return [sys.executable, "-m", "streamlit", "run", str(VIEWER), *flags, *extra, "--", *script]


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def missing_path(args: argparse.Namespace) -> str:
    """Why --checkpoint / --data-dir cannot be opened, in one line; "" when both can."""
    if args.checkpoint and not Path(args.checkpoint).is_file():
        why = "is a folder, not a file" if Path(args.checkpoint).is_dir() else "no such file"
        return f"--checkpoint {args.checkpoint}: {why}"
    if args.data_dir and not Path(args.data_dir).is_dir():
        return f"--data-dir {args.data_dir}: no such folder"
    return ""


def run(args: argparse.Namespace, command: str) -> int:
    problem = missing_path(args)
    if problem:  # before the server starts: a typo must not leave a page that cannot load
        print(f"halting view: {problem}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("streamlit") is None:
        print(
            "halting view: streamlit is not installed; install it with "
            "`pip install -e '.[viewer]'`",
            file=sys.stderr,
        )
        return 2
    cmd = streamlit_command(args)
    options = dict(streamlit_options(args))
    host, port = options["server.address"], int(options["server.port"])
    if not port_free(host, port):
        print(
            f"halting view: port {port} on {host} is in use; choose another with --port",
            file=sys.stderr,
        )
        return 2
    print(
        f"halting view: serving http://{host}:{port}"
        + (
            f"  (from another machine: ssh -L {port}:{host}:{port} <this host>)"
            if host in ("127.0.0.1", "localhost")
            else ""
        ),
        flush=True,
    )
    os.execv(sys.executable, cmd)  # the server replaces this process: signals reach it directly
    return 0  # not reached
