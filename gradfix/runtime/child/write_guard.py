"""In a run in a scratch copy, refuse the program's writes to the project's originals.

The copy links what it does not copy (large data files beyond the budget, virtual environments) to
the originals; a program that opens one of them for writing, or names an original by its absolute
path, must get an error, not change the user's file. An audit hook (PEP 578) sees every open, rename,
removal, truncation and change of mode made through Python (``open``, ``os``, ``shutil``, ``pathlib``
and what is built on them: csv, json, pickle, numpy, pandas, zipfile, Keras' CSVLogger and ``.keras``
saving) and raises PermissionError for a path that resolves to a listed original. Native code writing
through its own calls (HDF5, TensorFlow's file system) and other processes the program starts are not
seen; the README says so.

Standard library only: this runs in the user's interpreter before the program.
"""

import errno
import os
import sys

from .schema import FACTS_ENV, READ_ONLY_ENV

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
FOLLOWS_LINKS = ("os.truncate", "os.chmod", "os.chown", "os.utime")  # act on what a link points to
NAMES_AN_ENTRY = ("os.remove", "os.rmdir", "os.mkdir", "shutil.rmtree")  # act on the name itself


class WriteGuard:
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
    guard = WriteGuard(allowed, [line[2:] for line in lines if line.startswith("- ")])
    sys.addaudithook(guard.hook)
    return guard
