"""The program's output as a plain run shows it: warnings attributed past gradfix's own frames.

A hook of gradfix's sits between the program and TensorFlow or Keras (``Layer.__init__``, ``Model.compile``,
``GradientTape.gradient``, ...): a warning raised there with ``stacklevel=2`` would name the hook's file and line
instead of the caller a plain run names (``train.py:9: UserWarning: Do not pass an `input_shape`...``).
``warnings.warn`` is replaced by one that counts the frames of its ``stacklevel`` without gradfix's.
Installed before TensorFlow is imported, so that the modules binding ``warn`` at import bind this one.
"""

import sys
import warnings

from .frames import is_child_file


def install():
    original = warnings.warn
    if getattr(original, "_gradfix", False):
        return

    def warn(message, category=None, stacklevel=1, source=None, **options):
        try:
            level = _plain_level(stacklevel)
        except Exception:
            level = stacklevel + 1
        return original(message, category, level, source, **options)

    warn._gradfix = True
    warnings.warn = warn


def _plain_level(stacklevel):
    """The ``stacklevel`` to give the real ``warn`` called from ``warn`` above, for the frame a plain run names:
    ``stacklevel - 1`` frames above the caller, gradfix's own frames not counted (but walked through)."""
    caller = sys._getframe(2)
    frame, walked, left = caller, 0, max(1, int(stacklevel)) - 1
    while left and frame.f_back is not None:
        frame = frame.f_back
        walked += 1
        if not is_child_file(frame.f_code.co_filename):
            left -= 1
    return walked + 2  # 1 names ``warn`` above, 2 its caller
