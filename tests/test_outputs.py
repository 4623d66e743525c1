"""Output paths are probed before a run and written atomically; failures are U005/U006/U007."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import peakdsl.atomic
from peakdsl.lang.project import UsageError
from peakdsl.outputs import check_distinct, check_output, write_output


def code_of(call: object, *args: object) -> str:
    with pytest.raises(UsageError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.diagnostic.code


def test_a_new_file_in_missing_folders_passes_and_creates_nothing(tmp_path: Path) -> None:
    check_output(tmp_path / "reports" / "deep" / "r.html", "--report")
    assert list(tmp_path.iterdir()) == []  # the probe is gone; folders come with the write


def test_wrong_kinds_of_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert code_of(check_output, tmp_path, "--report") == "U007"
    assert code_of(check_output, tmp_path / "file" / "r.html", "--report") == "U007"
    if Path("/dev/null").exists():
        assert code_of(check_output, Path("/dev/null"), "--trades") == "U007"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="no /proc on this system")
def test_a_folder_that_refuses_files() -> None:
    assert code_of(check_output, Path("/proc/r.html"), "--report") == "U006"


def test_outputs_must_not_overwrite_inputs_or_each_other(tmp_path: Path) -> None:
    spec = tmp_path / "s.peak"
    assert code_of(check_distinct, [("--trades", spec)], [spec]) == "U005"
    same = [("--trades", tmp_path / "a.md"), ("--report", tmp_path / "a.md")]
    assert code_of(check_distinct, same, [spec]) == "U005"
    check_distinct([("--trades", tmp_path / "t.csv"), ("--report", None)], [spec])


def test_write_output_turns_os_errors_into_diagnostics(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write_output(tmp_path / "sub" / "t.csv", b"a,b\n", "--trades")
    assert (tmp_path / "sub" / "t.csv").read_bytes() == b"a,b\n"

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(peakdsl.atomic, "write_atomic", full)
    with pytest.raises(UsageError) as caught:
        write_output(tmp_path / "t2.csv", b"x", "--trades")
    d = caught.value.diagnostic
    assert (d.code, d.path) == ("U006", "--trades")
    assert d.message.endswith("t2.csv: no space left on the device")
