"""Every command in the README's "Several GPUs" section exists: its module's --help lists every flag shown."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Several GPUs", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    lines = block.replace("\\\n", " ").splitlines()
    return [shlex.split(l) for l in lines if l.strip() and not l.lstrip().startswith("#")]


def _help(module: str, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        importlib.import_module(module).main(["--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_every_shown_command_and_flag_exists(capsys):
    commands = _commands()
    assert len(commands) >= 5
    for argv in commands:
        if argv[:2] == ["accelerate", "launch"]:
            m = argv.index("-m")
            launcher, argv = argv[2:m], ["python", *argv[m:]]
            from accelerate.commands.launch import launch_command_parser

            # accelerate's own parser accepts the launcher flags exactly as shown (parse_args exits on an unknown one)
            parsed = launch_command_parser().parse_args([*launcher, "script.py"])
            assert parsed.multi_gpu or parsed.config_file, launcher
            config = launcher[launcher.index("--config_file") + 1] if "--config_file" in launcher else None
            if config:
                from accelerate.commands.config.config_args import load_config_from_file

                assert load_config_from_file(str(ROOT / config)).deepspeed_config["zero_stage"] == 2
        assert argv[:2] == ["python", "-m"], argv
        module = argv[2]
        help_text = _help(module, capsys)
        for flag in [a for a in argv[3:] if a.startswith("--")]:
            assert re.search(rf"{re.escape(flag)}\b", help_text), (module, flag)
        if module == "hallo4.testing":
            assert argv[3] in help_text  # the sub-command
