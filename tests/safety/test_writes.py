"""`fix --apply` cannot lose data: links, owners, modes, read-only files, concurrent edits, bytes outside the fix."""

from __future__ import annotations

import os
import stat

import pytest

from gradfix.source import SourceError, read_source, write_source_atomically
from tests.safety.conftest import BUGGY, FIXED, run


def test_symbolic_link_is_written_through_to_its_target(tmp_path):
    target = tmp_path / "real" / "train.py"
    target.parent.mkdir()
    target.write_text(BUGGY)
    link = tmp_path / "train.py"
    link.symlink_to(target)
    result = run("fix", "--apply", link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == FIXED


def test_hard_link_is_kept(tmp_path):
    first = tmp_path / "train.py"
    first.write_text(BUGGY)
    second = tmp_path / "copy.py"
    os.link(first, second)
    assert run("fix", "--apply", first).exit_code == 0
    assert os.stat(first).st_ino == os.stat(second).st_ino
    assert second.read_text() == FIXED


def test_read_only_file_is_refused_unless_forced(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(BUGGY)
    os.chmod(path, 0o444)
    result = run("fix", "--apply", path)
    assert result.exit_code == 2
    assert "read-only" in result.stderr and "No problems found." not in result.stderr
    assert path.read_text() == BUGGY
    forced = run("fix", "--apply", "--force", path)
    assert forced.exit_code == 0, forced.output
    assert path.read_text() == FIXED
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444


def test_owner_and_group_are_kept(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    path = tmp_path / "train.py"
    path.write_text(BUGGY)
    os.chown(path, 12345, 23456)
    assert run("fix", "--apply", path).exit_code == 0
    info = os.stat(path)
    assert (info.st_uid, info.st_gid) == (12345, 23456)
    assert path.read_text() == FIXED


def test_file_changed_since_it_was_read_is_not_overwritten(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(BUGGY)
    source = read_source(str(path))
    path.write_text(BUGGY + "# saved in the editor meanwhile\n")
    with pytest.raises(SourceError, match="changed since gradfix read it"):
        write_source_atomically(source, FIXED)
    assert path.read_text().endswith("# saved in the editor meanwhile\n")


@pytest.mark.parametrize("name, transform", [
    ("form feed on an unrelated line", lambda text: text.replace("optimizer = tf.keras", "\f\noptimizer = tf.keras").replace("\f\n", "\f")),
    ("bare CR line endings", lambda text: text.replace("\n", "\r")),
    ("CRLF line endings", lambda text: text.replace("\n", "\r\n")),
    ("vertical tab and NEL in comments", lambda text: text.replace("import numpy as np", "import numpy as np  # a\vb\x85c")),
])
def test_no_byte_changes_outside_the_fixed_lines(tmp_path, name, transform):
    original, expected = transform(BUGGY), transform(FIXED)
    path = tmp_path / "train.py"
    path.write_bytes(original.encode())
    result = run("fix", "--apply", path)
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == expected.encode(), name
