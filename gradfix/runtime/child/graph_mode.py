"""What a tf.function does differently in graph mode than in the eager run gradfix makes of it.

gradfix runs every tf.function eagerly (``tf.config.run_functions_eagerly``) so that the line tracer and the
op callback see its statements. A plain run traces the function once and runs the graph afterwards: a NumPy
conversion raises there (or sees a symbolic tensor), a NumPy value or a variable made in the function is
made once, at trace time, and a Python value the function reads is read once, at trace time. Each such
construct seen in the eager run is a ``graph-mode`` note at its line, naming it: the program may fail, or
lose gradients, in graph mode only, where the eager run did not.
"""

import ast
import dis
import inspect
import linecache
import re

from . import compat
from .frames import full_path, is_user_file
from .state import STATE

GRAPH_MODE = "graph-mode"
SCALARS = (bool, int, float, complex, str)


def note(construct, filename, line, message):
    """One note per construct and line."""
    key = (construct, filename, line)
    if key in STATE.run.graph_mode_noted or not line:
        return
    STATE.run.graph_mode_noted.add(key)
    STATE.run.notes.append({"kind": GRAPH_MODE, "construct": construct, "message": message,
                            "site": {"file": full_path(filename), "line": line}})


def conversion(filename, line, how):
    note("numpy-in-function", filename, line, (
        "%s runs inside a tf.function here: gradfix runs functions eagerly, where it works, but in graph mode "
        "(without gradfix) it raises, or sees a symbolic tensor" % how))


def constant(filename, line, frame):
    """A NumPy value made into a tensor inside a tf.function, at a statement of the program's that calls NumPy
    (``tf.constant(np.random.normal(...))``, ``tf.reduce_mean(np.square(pred - y))``); a NumPy argument of the
    function, or one Keras converts, is a placeholder in graph mode, not a NumPy call."""
    if frame is None or not line:
        return
    aliases = [name for name, value in frame.f_globals.items() if getattr(value, "__name__", None) == "numpy"
               and type(value).__name__ == "module"]
    text = linecache.getline(filename, line)
    if not aliases or not re.search(r"\b(%s)\." % "|".join(re.escape(a) for a in aliases), text):
        return
    note("numpy-in-function", filename, line, (
        "NumPy runs inside a tf.function here (`%s`): in graph mode it runs once, when the function is traced: on a "
        "tensor it raises (a symbolic tensor has no NumPy value), on other values its result is frozen into the "
        "graph and every later call reuses it; gradfix runs functions eagerly, where NumPy runs at each call"
        % text.strip()))


def variable(filename, line):
    note("trace-time-value", filename, line, (
        "a variable is created inside a tf.function here: in graph mode a function may create its variables at its "
        "first trace only, and TensorFlow raises ValueError (\"tf.function only supports singleton tf.Variables "
        "created on the first call\") when it traces it again; gradfix's eager run creates a new one at each call"))


def install_function_hook():
    """Look at each tf.function's Python function once, when it is first called, for the Python state it reads."""
    cls = compat.PARTS.tf_function_class
    original = cls.__dict__.get("__call__") if cls is not None else None
    if original is None or getattr(original, "_gradfix", False):
        return
    looked_at = set()

    def __call__(self, *args, **kwargs):
        if id(self) not in looked_at and not STATE.in_gradfix:
            looked_at.add(id(self))
            try:
                python_state(getattr(self, "python_function", None), getattr(self, "__name__", "") or "")
            except Exception:
                pass
        return original(self, *args, **kwargs)

    __call__._gradfix = True
    cls.__call__ = __call__


def python_state(function, name):
    """Module-level Python values (a flag, a counter) the function reads that the program binds more than once:
    a graph keeps the value it was traced with."""
    function = inspect.unwrap(function) if function is not None else None
    code = getattr(function, "__code__", None)
    if code is None or not is_user_file(code.co_filename):
        return
    module = getattr(function, "__globals__", {})
    rebound = _rebound_names(code.co_filename)
    line = None
    for instruction in dis.get_instructions(code):
        line = _line_of(instruction, line)
        if instruction.opname not in ("LOAD_GLOBAL", "LOAD_NAME"):
            continue
        value_name = instruction.argval
        value = module.get(value_name, None)
        if type(value) not in SCALARS or value_name not in rebound:
            continue
        note("python-state", code.co_filename, line, (
            "the tf.function `%s` reads the Python value `%s` (%r now), which the program sets again at line %d: in "
            "graph mode the function keeps the value it had when it was traced and does not see later changes; "
            "gradfix's eager run reads it at each call" % (name or code.co_name, value_name, value,
                                                          rebound[value_name])))


def _line_of(instruction, previous):
    positions = getattr(instruction, "positions", None)
    if positions is not None and positions.lineno:
        return positions.lineno
    return instruction.starts_line or previous


_REBOUND: dict[str, dict[str, int]] = {}


def _rebound_names(filename):
    """Module-level names bound more than once in the file (or in a function through ``global``), a loop's target
    included: name -> the line of the second binding."""
    found = _REBOUND.get(filename)
    if found is not None:
        return found
    found = {}
    try:
        tree = ast.parse("".join(linecache.getlines(filename)))
    except Exception:
        _REBOUND[filename] = found
        return found
    declared = {name for node in ast.walk(tree) if isinstance(node, ast.Global) for name in node.names}
    bindings = {}

    def bind(target, line):
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                bindings.setdefault(node.id, []).append(line)

    def visit(nodes, top):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                body = node.body if isinstance(node.body, list) else []
                visit(body, False)
                continue
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.target is not None:
                targets = [node.target]
                if isinstance(node, ast.AugAssign):
                    targets = [node.target, node.target]  # a += is a second binding of what was bound before
            elif isinstance(node, (ast.For, ast.AsyncFor)):
                targets = [node.target, node.target]  # a loop binds its target again at each iteration
            for target in targets:
                if top or (isinstance(target, ast.Name) and target.id in declared):
                    bind(target, node.lineno)
            visit([child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)], top)

    visit(tree.body, True)
    for name, lines in bindings.items():
        if len(lines) > 1:
            found[name] = sorted(lines)[1]
    _REBOUND[filename] = found
    return found
