"""In a run in a scratch copy, refuse the program's writes to the project's originals.

The copy links what it does not copy (data beyond the copy budget, virtual environments) to the
originals; a program that opens one of them for writing, or names an original by its own path,
must get an error, never change the user's file. Two layers:

- Landlock (Linux 5.13 and later, where the kernel enables it): the kernel refuses every write,
  truncation, creation or removal in the project and in the folders it links to, from Python, from
  native code (HDF5, TensorFlow's file system) and from every process the program starts. Folders
  outside the project stay writable; new entries directly in a folder above the project do not.
- An audit hook (PEP 578), everywhere: every open for writing, rename, removal, truncation and
  change of mode made through Python raises PermissionError for a path that resolves to a listed
  original. It does not see native code or other processes; Landlock does, where there is one.

Standard library only: this runs in the user's interpreter before the program.
"""

import ctypes
import errno
import os
import sys

from .schema import FACTS_ENV, READ_ONLY_ENV

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
FOLLOWS_LINKS = ("os.truncate", "os.chmod", "os.chown", "os.utime")  # act on what a link points to
NAMES_AN_ENTRY = ("os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree")  # act on the name itself


class WriteGuard:
    kernel = False  # whether Landlock enforces it too

    def __init__(self, allowed, protected):
        self.allowed = [p.rstrip(os.sep) or os.sep for p in allowed]
        self.protected = [p.rstrip(os.sep) or os.sep for p in protected]

    def refuses(self, path, follow: bool) -> bool:
        try:
            path = os.fsdecode(path)
        except TypeError:
            return False
        absolute = os.path.abspath(path)
        real = os.path.realpath(absolute) if follow else os.path.join(
            os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
        if any(_beneath(real, place) for place in self.allowed):
            return False
        return any(_beneath(real, place) for place in self.protected)

    def check(self, path, follow: bool) -> None:
        if isinstance(path, int) or path is None:
            return  # a descriptor: opened, and checked, before
        if self.refuses(path, follow):
            raise PermissionError(errno.EACCES, "gradfix: the original is read-only in a run in a copy", os.fsdecode(path))

    def hook(self, event, args):
        if event == "open":
            path, mode, flags = args
            writes = (flags or 0) & WRITE_FLAGS or (isinstance(mode, str) and any(c in mode for c in "wax+"))
            if writes:
                self.check(path, follow=True)
        elif event in FOLLOWS_LINKS:
            self.check(args[0], follow=True)
        elif event in NAMES_AN_ENTRY:
            self.check(args[0], follow=False)
        elif event in ("os.rename", "os.link", "os.symlink"):
            if event != "os.symlink":
                self.check(args[0], follow=False)
            self.check(args[1], follow=False)


CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446  # the same numbers on every architecture
RULESET_VERSION = 1
PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
WRITE_FILE, REMOVE_DIR, REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
MAKE = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
REFER, TRUNCATE = 1 << 13, 1 << 14
FILE_RIGHTS = WRITE_FILE | TRUNCATE


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def restrict_writes(allowed, protected) -> bool:
    """Landlock: from now on this process and its children write only outside ``protected``, and in ``allowed``.

    Landlock only grants: write rights are granted beneath every entry of the folders above a protected
    path that is not itself on the way to one. False where the kernel has no Landlock; nothing restricted then."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _restrict_writes(allowed, protected)
    except Exception:  # noqa: BLE001 - without Landlock the audit hook still guards what Python writes
        return False


def _restrict_writes(allowed, protected) -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(RULESET_VERSION))
    if abi < 1:
        return False
    handled = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    attr = ctypes.c_uint64(handled)
    ruleset = libc.syscall(CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        def grant(path):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                return
            try:
                is_dir = os.path.isdir(path)
                rule = _PathBeneath(handled if is_dir else handled & FILE_RIGHTS, fd)
                libc.syscall(ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0))
            finally:
                os.close(fd)

        protected = [os.path.realpath(p) for p in protected]
        for place in allowed:
            grant(place)

        def on_the_way(path):  # an ancestor of a protected path
            return any(p.startswith(path.rstrip("/") + "/") for p in protected)

        def beneath_protected(path):
            return any(path == p or path.startswith(p.rstrip("/") + "/") for p in protected)

        pending = ["/"]
        while pending:
            folder = pending.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                path = os.path.join(folder, entry.name)
                if beneath_protected(path):
                    continue
                if entry.is_symlink():
                    real = os.path.realpath(path)
                    if beneath_protected(real) or on_the_way(real):
                        continue  # a link into the project or above it: what it leads to is dealt with on its own
                if entry.is_dir(follow_symlinks=False) and on_the_way(path):
                    pending.append(path)
                else:
                    grant(path)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:  # prctl
            return False
        return libc.syscall(RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) == 0
    finally:
        os.close(ruleset)


def _beneath(path: str, place: str) -> bool:
    return path == place or path.startswith(place if place.endswith(os.sep) else place + os.sep)


def install():
    """Install the guard when the parent listed originals (``READ_ONLY_ENV``); returns it, or None."""
    listing = os.environ.get(READ_ONLY_ENV)
    if not listing:
        return None
    try:
        with open(listing, encoding="utf-8", errors="surrogateescape") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    allowed = [line[2:] for line in lines if line.startswith("+ ")]
    facts = os.environ.get(FACTS_ENV)
    if facts:
        allowed.append(os.path.realpath(os.path.dirname(facts)))
    protected = [line[2:] for line in lines if line.startswith("- ")]
    guard = WriteGuard(allowed, protected)
    guard.kernel = restrict_writes(allowed, protected)
    sys.addaudithook(guard.hook)
    return guard
