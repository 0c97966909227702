"""The ``cloudtasks-kit`` command's own problems: one line on stderr, the right exit status, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from cloudtasks_kit import __version__
from cloudtasks_kit.cli import main

# Runs a piece of Python with aiohttp unimportable, as when the [emulator] extra is not installed.
WITHOUT_AIOHTTP = "import sys; sys.modules['aiohttp'] = None; "


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def assert_one_friendly_line(stderr: str, *needles: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"cloudtasks-kit {__version__}"


@pytest.mark.parametrize("command", ["emulator", "demo"])
def test_a_missing_emulator_extra_is_one_line_with_the_install_command(command: str) -> None:
    result = python(WITHOUT_AIOHTTP + f"from cloudtasks_kit.cli import main; sys.exit(main([{command!r}]))")
    assert result.returncode == 2
    assert_one_friendly_line(
        result.stderr, f"cloudtasks-kit {command}:", "pip install 'cloudtasks-kit[emulator]'"
    )


def test_python_m_emulator_says_the_same() -> None:
    result = python(
        WITHOUT_AIOHTTP + "import runpy; sys.argv = ['emulator', '--port', '0', '--rest-port', '0']; "
        "runpy.run_module('cloudtasks_kit.emulator', run_name='__main__')"
    )
    assert result.returncode == 2
    assert_one_friendly_line(result.stderr, "pip install 'cloudtasks-kit[emulator]'")


def test_the_extra_check_passes_when_aiohttp_is_there(monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudtasks_kit.cli import missing_emulator_extra

    assert missing_emulator_extra() is None
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    assert "cloudtasks-kit[emulator]" in (missing_emulator_extra() or "")


@pytest.fixture
def busy_port() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    yield listener.getsockname()[1]
    listener.close()


@pytest.mark.parametrize("flag", ["--port", "--rest-port"])
def test_a_taken_port_is_one_line_and_status_1(
    flag: str, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "--rest-port" if flag == "--port" else "--port"
    assert main(["emulator", flag, str(busy_port), other, "0"]) == 1
    assert_one_friendly_line(capsys.readouterr().err, f"127.0.0.1:{busy_port}", "--port and --rest-port")


def test_a_taken_port_in_a_real_process_leaves_no_traceback(busy_port: int) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudtasks_kit.cli",
            "emulator",
            "--port",
            "0",
            "--rest-port",
            str(busy_port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert_one_friendly_line(result.stderr, f"127.0.0.1:{busy_port}")


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_port_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["emulator", "--port", port])
    assert exited.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_the_emulator_starts_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloudtasks_kit.cli",
            "emulator",
            "--port",
            "0",
            "--rest-port",
            "0",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert ready.startswith("cloudtasks-kit emulator ready: gRPC 127.0.0.1:"), ready
        rest = ready.split("REST ", 1)[1].split(" ", 1)[0]
        assert ready.rstrip().endswith(f"; dashboard {rest}/"), ready  # the dashboard's address
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("3d", 259200), ("0.5", 0.5)]
)
def test_tombstone_windows_take_durations(text: str, seconds: float) -> None:
    from cloudtasks_kit.emulator_cli import _duration

    assert _duration(text).total_seconds() == seconds


@pytest.mark.parametrize("option", ["--task-tombstone", "--queue-tombstone"])
def test_a_bad_tombstone_window_is_a_usage_error(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["emulator", option, "soon"])
    assert exited.value.code == 2
    assert "'soon' is not a duration" in capsys.readouterr().err


def test_quiet_and_debug_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["emulator", "--quiet", "--debug", "--port", "0", "--rest-port", "0"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
