"""Every rs3gw command and subcommand answers --help with exit 0 and a description of what it does."""

from __future__ import annotations

import argparse
import textwrap

import pytest

from rs3gw.cli import build_parser


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out.append(((*path, name), child.description or ""))
                out += _commands(child, (*path, name))
    return out


PARSER = build_parser()
COMMANDS = _commands(PARSER)


def test_the_admin_umbrella_is_complete() -> None:
    admin = {p[1] for p, _ in COMMANDS if len(p) == 2 and p[0] == "admin"}
    assert {"bucket", "usage", "config", "user", "key", "heal", "backup", "key-rotate"} <= admin
    bucket = {p[2] for p, _ in COMMANDS if len(p) == 3 and p[:2] == ("admin", "bucket")}
    assert bucket == {"list", "info", "create", "delete", "set-versioning", "set-compression"}
    # The aliases are the same commands as the top-level ones, not copies that could drift.
    top = {p[1:] for p, _ in COMMANDS if p[0] in ("heal", "backup")}
    aliased = {p[2:] for p, _ in COMMANDS if p[:2] in (("admin", "heal"), ("admin", "backup"))}
    assert top and {p for p in top if p} == {p for p in aliased if p}


@pytest.mark.parametrize("path,description", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help(path: tuple[str, ...], description: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(description) >= 10, f"rs3gw {' '.join(path)} has no description"
    with pytest.raises(SystemExit) as exit_info:
        PARSER.parse_args([*path, "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.startswith(f"usage: rs3gw {' '.join(path)}")
    first_words = " ".join(textwrap.dedent(description).split())[:40]
    assert first_words in out
