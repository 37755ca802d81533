"""The arguments of `gradfix.diagnose` as the server reads them, before any run."""

from __future__ import annotations

import os

from gradfix.lsp.diagnose_command import Request, parse_arguments


def test_an_absolute_target_inside_the_folder_is_run_and_named_relative_to_it(tmp_path):
    # what an editor sends: the active file's path (the VS Code extension's "Diagnose this file")
    request = parse_arguments([{"target": str(tmp_path / "src" / "train.py")}], str(tmp_path))
    assert isinstance(request, Request)
    assert (request.target, request.cwd) == (os.path.join("src", "train.py"), str(tmp_path))


def test_targets_outside_the_folder_or_relative_are_kept_as_given(tmp_path):
    project = tmp_path / "project"
    outside = str(tmp_path / "elsewhere" / "train.py")
    assert parse_arguments([{"target": outside}], str(project)).target == outside
    assert parse_arguments([{"target": "train.py"}], str(project)).target == "train.py"
    # a sibling folder whose name starts like the project's is outside it
    sibling = str(tmp_path / "project-old" / "train.py")
    assert parse_arguments([{"target": sibling}], str(project)).target == sibling
