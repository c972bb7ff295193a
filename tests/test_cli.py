"""The command line: help for every command, version, exit codes, config files."""

import subprocess
import sys

import pytest

from nasbench import __version__
from nasbench.cli import COMMANDS, main


def exit_code(argv: list[str]) -> int:
    """main's return value, or argparse's exit status for a usage error."""
    try:
        return main(argv)
    except SystemExit as exit_info:
        assert isinstance(exit_info.code, int)
        return exit_info.code


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nasbench {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: nasbench {command}" in out
    assert "not available yet" not in out


def test_console_script_runs_in_a_fresh_process():
    result = subprocess.run([sys.executable, "-m", "nasbench.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


def test_unknown_command_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "invalid choice" in err


def test_unknown_option_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--epochz", "3"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "invalid epochs"),
        (["train", "--lr", "-1"], "invalid lr"),
        (["train", "--optimizer", "adagrad"], "invalid optimizer"),
        (["train", "--eps", "2"], "less than or equal to 1"),
        (["train", "--augment", "rotate"], "invalid augment"),
        (["train", "--model", "resnet9000"], "unknown model 'resnet9000'"),
        (["train", "--dataset", "imagenet", "--epochs", "1"], "unknown dataset 'imagenet'"),
        (["train", "--model", "missing.json"], "cannot read architecture missing.json"),
    ],
)
def test_bad_values_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_yaml_config_and_flag_override(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 0\nmodel: lenet5\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "invalid epochs" in capsys.readouterr().err
    # the flag overrides the file: now the bad value comes from the flag, not the file
    config.write_text("epochs: 3\nlr: 0.01\n")
    assert main(["train", "--config", str(config), "--lr", "-2"]) == 2
    assert "invalid lr" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command, text, message",
    [
        ("train", "epochs: [1, 2\n", "not valid YAML at line"),
        ("train", "- just\n- a list\n", "must be a mapping"),
        ("train", "epochs: 2\nwarp_speed: 9\n", "unknown option 'warp_speed'"),
        ("train", "epochs: many\n", "invalid epochs"),
        # commands whose flags are plain argparse take the same files
        ("describe", "modle: lenet5\n", "unknown option 'modle'"),
        ("describe", "model: lenet5\ninput: 1x8x8\njson: 3\n", "expected true or false"),
        ("describe", "input: 1x8x8\n", "required: --model"),
    ],
)
def test_bad_config_files(command, text, message, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert exit_code([command, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_config_file(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_internal_error_is_exit_1_with_traceback_only_under_debug(monkeypatch, capsys):
    import nasbench.commands.train as train

    def explode(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(train, "run", explode)
    assert main(["train"]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err and "Traceback" not in err
    assert main(["--debug", "train"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_plain_commands_take_a_yaml_config_too(tmp_path, capsys):
    config = tmp_path / "describe.yaml"
    config.write_text("model: lenet5\ninput: 1x32x32\njson: true\n")
    assert main(["describe", "--config", str(config)]) == 0
    assert '"params": 61706' in capsys.readouterr().out
    # typed flags override the file
    assert main(["describe", "--config", str(config), "--input", "1x2x2"]) == 2
    assert "collapses" in capsys.readouterr().err
