"""The program's own frames: which files are the user's, the sites of frames, trimmed tracebacks."""

import itertools
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
_USER_FILE_CACHE: dict[str, bool] = {}


def is_child_file(filename):
    """Is this one of gradfix's child modules (the hooks, running the target)?"""
    known = _CHILD_FILE_CACHE.get(filename)
    if known is None:
        known = _CHILD_FILE_CACHE[filename] = bool(filename) and os.path.realpath(filename).startswith(_CHILD_DIR)
    return known


_CHILD_FILE_CACHE: dict[str, bool] = {}


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
    span = instruction_span(frame.f_code, frame.f_lasti)
    return span["column"] if span is not None else None


def instruction_span(code, lasti):
    """The source range of the instruction at byte offset ``lasti`` of ``code``: the call or operator a
    suspended frame is running (``K.argmax(x)``, ``a > b``, ``t.numpy()``).

    {"line", "column", "end_line", "end_column", "exact", "text"}: columns count characters from 1, the
    end column is the one just after the last character. Python 3.10 has no column table: the range is
    the instruction's line, with ``exact`` False and no columns. None when nothing maps the offset."""
    positions = getattr(code, "co_positions", None)
    try:
        if positions is not None:
            entry = next(itertools.islice(positions(), lasti // 2, None), None)
            if entry is not None and None not in entry:
                return _exact_span(code.co_filename, *entry)
        return _line_span(code, lasti)
    except Exception:
        return None


def _exact_span(filename, line, end_line, column, end_column):
    # co_positions counts UTF-8 bytes; a report and LibCST count characters
    first = linecache.getline(filename, line)
    last = first if end_line == line else linecache.getline(filename, end_line)
    if not first or not last:  # no source to read (a frozen module): the columns as the table gives them
        return {"line": line, "column": column + 1, "end_line": end_line, "end_column": end_column + 1,
                "exact": True, "text": ""}
    column = len(first.encode("utf-8")[:column].decode("utf-8", "replace"))
    end_column = len(last.encode("utf-8")[:end_column].decode("utf-8", "replace"))
    if end_line == line:
        text = first[column:end_column]
    else:
        middle = [linecache.getline(filename, n) for n in range(line + 1, end_line)]
        text = "".join([first[column:]] + middle + [last[:end_column]])
    return {"line": line, "column": column + 1, "end_line": end_line, "end_column": end_column + 1,
            "exact": True, "text": text}


def _line_span(code, lasti):
    line = None
    for start, end, number in code.co_lines():
        if start <= lasti < end:
            line = number
            break
    if line is None:
        return None
    return {"line": line, "column": None, "end_line": line, "end_column": None, "exact": False,
            "text": linecache.getline(code.co_filename, line).strip()}


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


MAX_CALLERS = 8


def user_callers(frame):
    """The user's frames that called ``frame``, innermost first, each as the site of the call it is
    suspended in: a repair that needs the tape or the loss follows them out of a helper function."""
    callers = []
    current = frame.f_back if frame is not None else None
    while current is not None and len(callers) < MAX_CALLERS:
        code = current.f_code
        if is_user_file(code.co_filename):
            span = instruction_span(code, current.f_lasti) or {}
            line = span.get("line") or current.f_lineno
            callers.append({
                "file": full_path(code.co_filename),
                "line": line,
                "function": code.co_name,
                "code": linecache.getline(code.co_filename, line).strip(),
                "column": span.get("column"),
                "end_line": span.get("end_line"),
                "end_column": span.get("end_column"),
                "text": span.get("text", ""),
            })
        current = current.f_back
    return callers


def first_user_site(skip=1, callers=False):
    frame = sys._getframe(skip)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            site = site_of_frame(frame)
            if callers:
                site["callers"] = user_callers(frame)
            return site
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
