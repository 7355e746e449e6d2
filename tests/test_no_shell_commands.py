"""Paths from the command line never reach a shell: the code has no shell calls, and a data
root and results folder full of shell syntax are used as literal paths."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tests.dataset_fixtures import copy_shared
from tg_metricattn.experiments.cli import main

REPO = Path(__file__).resolve().parents[1]
SHELL_FUNCTIONS = {("os", "system"), ("os", "popen"), ("os", "execl"), ("os", "execlp"), ("os", "spawnl")}


def _shell_calls(source: str) -> list[str]:
    """Calls of os.system/os.popen/exec*, and subprocess calls with shell=True or a command string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
        name = node.func.attr
        if (owner, name) in SHELL_FUNCTIONS:
            found.append(f"line {node.lineno}: {owner}.{name}")
        if owner == "subprocess":
            shell = any(
                k.arg == "shell" and not (isinstance(k.value, ast.Constant) and not k.value.value)
                for k in node.keywords
            )
            string_command = bool(node.args) and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp))
            if shell or string_command:
                found.append(f"line {node.lineno}: subprocess.{name} with a shell command")
    return found


def test_the_checker_finds_shell_calls():
    assert _shell_calls("import os\nos.system('ls ' + path)")
    assert _shell_calls("import subprocess\nsubprocess.run(cmd, shell=True)")
    assert _shell_calls("import subprocess\nsubprocess.run(f'ls {path}')")
    assert not _shell_calls("import subprocess\nsubprocess.run([exe, path], check=True)")


@pytest.mark.parametrize("package", ["tg_metricattn", "benchmarks"])
def test_no_shell_calls_in_the_code(package):
    offenders = {
        str(path.relative_to(REPO)): calls
        for path in sorted((REPO / package).rglob("*.py"))
        if (calls := _shell_calls(path.read_text()))
    }
    assert not offenders, f"shell calls found: {offenders}"


def test_paths_with_shell_syntax_are_literal_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    odd = "a dir; touch INJECTED $(touch INJECTED2) `touch INJECTED3` 'q' \"dq\" |&>"
    root = tmp_path / odd / "data"
    copy_shared("Planetoid/Cora", root)
    out = tmp_path / f"out {odd}"
    argv = ["train", "--dataset", "Cora", "--root", str(root), "--epochs", "2", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    assert json.loads((out / "run_0" / "final.json").read_text())["dataset"] == "Cora"
    assert not list(tmp_path.rglob("INJECTED*"))
