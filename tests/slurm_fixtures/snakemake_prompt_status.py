"""`python -m snakemake` for the Slurm tests, with the executor's status-check interval capped.

The Slurm executor plugin lengthens the pause between two status checks by 10 s after every
check that finds no finished job (up to 3 minutes), and Snakemake waits out the pause it is in
before exiting. On a real cluster that spares slurmctld; here it left each test run idle for up
to a minute after its jobs had ended. Capped at HALTING_TEST_STATUS_CHECK_S (default 2 s, the
tests' --seconds-between-status-checks): what is submitted, what Slurm does to the jobs and how
their states are read are the plugin's own.
"""

import os

from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor

CAP_S = float(os.environ.get("HALTING_TEST_STATUS_CHECK_S", "2"))
_pause = RemoteExecutor.next_seconds_between_status_checks
RemoteExecutor.next_seconds_between_status_checks = property(
    _pause.fget, lambda self, seconds: _pause.fset(self, min(seconds, CAP_S))
)

from snakemake.cli import main  # noqa: E402

main()
