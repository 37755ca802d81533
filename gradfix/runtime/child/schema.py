"""The facts file's schema, shared by the child that writes it and the parent that reads it (``gradfix.runtime.facts``).

Standard library only, and no imports of gradfix: the child loads this module in the user's interpreter.
A parent refuses facts of another ``FACTS_VERSION``; raise it when a field changes meaning or goes away.
"""

FACTS_VERSION = 3  # 3: a cut, a conversion, an update or a target's origin carries the "span" below

# the environment the parent gives the child
FACTS_ENV = "GRADFIX_FACTS"  # the JSON file to write the facts to (never stdout)
STEPS_ENV = "GRADFIX_STEPS"  # how many training steps to let run (default 1)
# in a run in a scratch copy: a file listing what the run may write ("+ path") and the originals it must not ("- path")
READ_ONLY_ENV = "GRADFIX_READ_ONLY"

# the facts document's fields, in the order they are written
FACTS_FIELDS = (
    "version",
    "status",  # one of STATUSES
    "tensorflow_version",
    "keras_version",
    "python",
    "executable",
    "error",  # {"type", "message", "frames", "traceback"} of what the program raised, or None
    "exit_code",  # what the program passed to sys.exit
    "steps",
    "stopped_after_steps",  # None: the program ended by itself
    "gradient_calls",
    "applies",
    "notes",  # {"kind", "message", "site"?}: "instrumentation", "degraded" (a hook is off), "graph-mode", ...
    # hook name -> {"active", "required", "found_as", "missing", "lost"}: which of TensorFlow's parts gradfix hooks
    # into were found (child/compat.py); an inactive optional hook is also a "degraded" note naming what is lost
    "capabilities",
    "elapsed",
)

# The "span" of a cut (the op, conversion, constant or update that took the path away) and of a target's
# origin: the user's expression that ran it, from the innermost user frame's instruction (library frames
# between it and TensorFlow are walked through). None when no user frame ran it.
SPAN_FIELDS = (
    "line",
    "column",  # the first character, counted from 1; None when only the line is known
    "end_line",
    "end_column",  # just after the last character (exclusive); None when only the line is known
    "exact",  # False on Python 3.10 (no column table): the range is the whole line
    "text",  # the expression's source text (the line's, when not exact)
)

STATUSES = (
    "ok",  # at least one gradient was computed: the facts below describe it
    "crashed",  # the program raised before its first gradient
    "exited-before-gradient",  # sys.exit / os._exit before the first gradient
    "no-gradient-call",  # ran to the end without ever asking for a gradient
    "timeout",  # killed after the time limit
    "no-tensorflow",  # the interpreter cannot import TensorFlow
    "unsupported-tensorflow",  # TensorFlow imports but lacks a part gradfix needs: the error names it
    "could-not-start",  # the interpreter itself could not be run
    "cancelled",  # stopped on request (the language server's cancel)
)
