# SPDX-License-Identifier: AGPL-3.0-or-later
"""The voltdb-py command: exit codes and output."""

import os
import subprocess
import sys

import pytest

from voltdb_py.cli import main


def test_demo_runs_and_verifies(tmp_path, capsys):
    assert main(["demo", "--votes", "300", "--partitions", "3", "--dir", str(tmp_path),
                 "--cluster-votes", "0"]) == 0
    out = capsys.readouterr().out
    assert "nothing lost or duplicated" in out
    assert "VOTES rows per partition" in out
    # a second run on the same directory adds to the same database
    assert main(["demo", "--votes", "50", "--partitions", "3", "--dir", str(tmp_path),
                 "--cluster-votes", "0"]) == 0


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


@pytest.mark.cluster
@pytest.mark.timeout(240)
def test_demo_with_the_cluster_part(tmp_path):
    """The README's first command: the embedded demo, then a 3-host cluster losing a host."""
    r = subprocess.run([sys.executable, "-m", "voltdb_py", "demo", "--votes", "200",
                        "--cluster-votes", "3000", "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=230,
                       env={**os.environ, "COLUMNS": "250"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "nothing lost or duplicated" in r.stdout
    assert "killed host 2" in r.stdout
    assert "every acknowledged vote kept, none duplicated" in r.stdout
    assert "lost the connection" not in r.stderr
