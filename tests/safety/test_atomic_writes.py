"""A write that fails part way (a file-size limit, a full disk) leaves the user's file byte for byte as it was.

A file with other hard links (or whose owner a new file cannot be given) is rewritten in its own inode,
so it cannot be replaced by rename: gradfix writes the whole new text beside it first, reserves the room
for a longer text, and only then copies it over; any failure before that leaves the file untouched.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradfix.source import SourceError, read_source, write_source_atomically
from tests.safety.conftest import BUGGY, FIXED


def _gradfix(*args, cwd, limit_bytes=None):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "gradfix", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120, preexec_fn=limit if limit_bytes is not None else None)


def _leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".gradfix-")]


def test_a_file_size_limit_leaves_a_hard_linked_file_as_it_was(tmp_path):
    assert len(FIXED.encode()) > len(BUGGY.encode())  # the fix makes the file longer: the limit falls between
    path = tmp_path / "train.py"
    path.write_text(BUGGY)
    os.link(path, tmp_path / "other-name.py")
    done = _gradfix("fix", "--apply", "train.py", cwd=tmp_path, limit_bytes=len(BUGGY.encode()) + 4)
    assert done.returncode == 2, done.stderr
    assert path.read_text() == BUGGY  # not half new, half old
    assert (tmp_path / "other-name.py").read_text() == BUGGY
    assert os.stat(path).st_nlink == 2
    assert "train.py: not written: File too large; the file is unchanged" in done.stderr
    assert "Traceback" not in done.stderr and "No problems found" not in done.stderr
    assert _leftovers(tmp_path) == []


def test_the_in_place_copy_reserves_its_room_first(tmp_path):
    """Even when the copy beside the file could be written (room freed by another program meanwhile),
    copying it over the file's own inode fails before any byte of the old text changes."""
    path = tmp_path / "train.py"
    path.write_bytes(BUGGY.encode())
    program = (
        "import resource, sys\n"
        "from gradfix.source import _overwrite\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({len(BUGGY.encode()) + 4}, {len(BUGGY.encode()) + 4}))\n"
        f"try:\n    _overwrite({str(path)!r}, {FIXED.encode()!r}, {BUGGY.encode()!r}, False)\n"
        "except OSError as error:\n    print(error.strerror)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "File too large", done.stderr
    assert path.read_bytes() == BUGGY.encode()


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KB tmpfs, filled to the last page by a filler file."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs (a disk that fills up) needs root; the file-size limit test covers the rest")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_leaves_a_hard_linked_file_as_it_was(small_disk):
    # a first line long enough that the fixed text needs one more page than the old one
    page = os.sysconf("SC_PAGE_SIZE")
    padding = "#" * (page - len(BUGGY.encode()) - 5) + "\n"
    original = (padding + BUGGY).encode()
    assert len(original) <= page < len((padding + FIXED).encode())
    path = small_disk / "train.py"
    path.write_bytes(original)
    os.link(path, small_disk / "other-name.py")
    with open(small_disk / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * page)
        except OSError:
            pass
    done = _gradfix("fix", "--apply", "train.py", cwd=small_disk)
    assert done.returncode == 2, done.stderr
    assert path.read_bytes() == original
    assert "train.py: not written: No space left on device; the file is unchanged" in done.stderr
    assert _leftovers(small_disk) == []
    os.unlink(small_disk / "filler")  # with room again, the same command writes the fix, links kept
    assert _gradfix("fix", "--apply", "train.py", cwd=small_disk).returncode == 0
    assert (small_disk / "other-name.py").read_bytes() == (padding + FIXED).encode()


@contextlib.contextmanager
def _file_size_limit(limit: int):
    """A soft file-size limit on this process for the block (Python ignores SIGXFSZ: writes past it fail with EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(old_size=st.integers(1, 9000), new_size=st.integers(1, 9000), links=st.integers(1, 3),
       limit=st.integers(0, 10000))
def test_a_write_leaves_the_whole_old_text_or_the_whole_new_one(tmp_path_factory, old_size, new_size, links, limit):
    folder = tmp_path_factory.mktemp("write")
    old, new = f"x = '{'o' * old_size}'\n", f"x = '{'n' * new_size}'\n"
    path = folder / "train.py"
    path.write_text(old)
    others = [folder / f"link{number}.py" for number in range(1, links)]
    for other in others:
        os.link(path, other)
    source = read_source(str(path))
    try:
        with _file_size_limit(limit):
            write_source_atomically(source, new)
    except SourceError as error:
        assert error.problem.endswith("the file is unchanged"), error.problem
        expected = old
    else:
        expected = new
    for name in [path, *others]:
        assert name.read_text() == expected
    assert os.stat(path).st_nlink == links
    assert _leftovers(folder) == []
