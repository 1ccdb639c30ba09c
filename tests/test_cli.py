# SPDX-License-Identifier: AGPL-3.0-or-later
"""The voltdb-py command: exit codes and output."""

import subprocess
import sys

import pytest

from voltdb_py.cli import main


def test_demo_runs_and_verifies(tmp_path, capsys):
    assert main(["demo", "--votes", "300", "--partitions", "3", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nothing lost or duplicated" in out
    assert "VOTES rows per partition" in out
    # a second run on the same directory adds to the same database
    assert main(["demo", "--votes", "50", "--partitions", "3", "--dir", str(tmp_path)]) == 0


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--votes", "-1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["nosuchcommand"])
    assert exc.value.code == 2


def test_python_dash_m_version():
    out = subprocess.run([sys.executable, "-m", "voltdb_py", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("voltdb-py ")
