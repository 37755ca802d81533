"""The program's own frames: which files are the user's, the sites of frames, trimmed tracebacks."""

import linecache
import os
import site
import sys
import sysconfig
import traceback


def _library_dirs():
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            path = sysconfig.get_paths().get(key)
        except Exception:
            path = None
        if path:
            dirs.add(os.path.realpath(path))
    try:
        for path in site.getsitepackages():
            dirs.add(os.path.realpath(path))
    except Exception:
        pass
    try:
        dirs.add(os.path.realpath(site.getusersitepackages()))
    except Exception:
        pass
    dirs.add(os.path.realpath(os.path.dirname(os.__file__)))
    return tuple(sorted(d.rstrip(os.sep) + os.sep for d in dirs if d))


_LIB_DIRS = _library_dirs()
# gradfix's own frames (the hooks, running the target) are never the user's, wherever gradfix is installed
_CHILD_DIR = os.path.realpath(os.path.dirname(os.path.abspath(__file__))) + os.sep
_USER_FILE_CACHE = {}


def is_user_file(filename):
    known = _USER_FILE_CACHE.get(filename)
    if known is not None:
        return known
    result = True
    if not filename or filename.startswith("<"):
        result = False
    else:
        real = os.path.realpath(filename)
        if real.startswith(_LIB_DIRS) or real.startswith(_CHILD_DIR):
            result = False
        elif os.sep + "site-packages" + os.sep in real or os.sep + "dist-packages" + os.sep in real:
            result = False
    _USER_FILE_CACHE[filename] = result
    return result


def full_path(path):
    try:
        path = os.path.abspath(path)
    except Exception:
        pass
    return path


def _column(frame):
    """1-based column of the frame's current instruction (Python 3.11+), else None."""
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is None:
        return None
    try:
        index = frame.f_lasti // 2
        for position, entry in enumerate(positions()):
            if position == index:
                column = entry[2]
                return None if column is None else column + 1
    except Exception:
        return None
    return None


def site_of_frame(frame, line=None):
    code = frame.f_code
    lineno = line if line is not None else frame.f_lineno
    return {
        "file": full_path(code.co_filename),
        "line": lineno,
        "column": _column(frame) if line is None else None,
        "function": code.co_name,
        "code": linecache.getline(code.co_filename, lineno).strip(),
    }


def first_user_site(skip=1):
    frame = sys._getframe(skip)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return site_of_frame(frame)
        frame = frame.f_back
    return None


def caller_site(skip=1):
    """The frame that called into TensorFlow, user code or not."""
    frame = sys._getframe(skip)
    return site_of_frame(frame) if frame is not None else None


def trimmed_traceback(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    kept = []
    for index, entry in enumerate(frames):
        if is_user_file(entry.filename) or index == len(frames) - 1:
            kept.append({
                "file": full_path(entry.filename),
                "line": entry.lineno,
                "function": entry.name,
                "code": (entry.line or "").strip(),
                "user": is_user_file(entry.filename),
            })
    lines = ["Traceback (most recent call last, user frames only):"]
    for entry in kept:
        lines.append('  File "%s", line %s, in %s' % (entry["file"], entry["line"], entry["function"]))
        if entry["code"]:
            lines.append("    " + entry["code"])
    message = str(exc)
    if len(message) > 4000:
        message = message[:4000] + " ..."
    lines.append("%s: %s" % (type(exc).__name__, message))
    return {"type": type(exc).__name__, "message": message, "frames": kept, "traceback": "\n".join(lines)}
