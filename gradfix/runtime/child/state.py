"""What the child has learnt so far, the facts file it is written to, and how the run ends."""

import json
import os
import sys
import time

from .schema import FACTS_ENV, FACTS_FIELDS, FACTS_VERSION, STEPS_ENV

_START = time.time()
MAX_EVENTS = 20000
MAX_TENSORS_QUERIED = 400
LIBRARY = ("", 0, "")  # the current line once user code has returned into a library (Keras's train_step)
MAX_OPS = 50000  # op records kept while a tape is alive (oldest dropped first)
MAX_OPS_PROBED = 300  # ops of one statement probed for the cut
ASSIGN_OPS = frozenset(("AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"))
# Ops whose output depends on the input's shape only: they never carry the gradient path.
SHAPE_OPS = frozenset(("Shape", "ShapeN", "Size", "Rank", "ZerosLike", "OnesLike", "BroadcastGradientArgs"))


class GradfixStop(BaseException):
    """Raised inside ``model.fit`` once enough steps have run, when the program is to go on after fit.

    Only gradfix's fit wrapper catches it; everywhere else the run ends with ``end_run`` instead,
    because a program's ``except BaseException``, bare ``except``, ``finally`` or thread would see
    an exception (print it, swallow it and train on, or run its clean-up)."""


class RunState(object):
    """How the run goes and what the facts file says: everything here but the first site and the fit calls is
    written to it (``write_facts``)."""

    def __init__(self):
        self.facts_path = os.environ.get(FACTS_ENV)
        self.steps = max(1, int(os.environ.get(STEPS_ENV, "1") or 1))
        self.status = "exited-before-gradient"
        self.error = None
        self.exit_code = None
        self.stopped_after_steps = None
        self.gradient_calls = []
        self.applies = []
        self.notes = []
        self.capabilities = {}  # hook name -> what compat found for it (see compat.Capability)
        self.tf_version = None
        self.keras_version = None
        self.first_site = None  # (file, line) of the first gradient call site: one hit per step
        self.first_site_hits = 0
        self.previous_sources = {}  # gradient site -> [kind of each source]
        self.fit_keys = []  # user call site (file, line) of each model.fit running now, outermost first
        self.fits_cut = set()  # user call sites of the fit calls cut short after their first step(s)
        self.fit_sites = set()  # every fit call site seen: an op made under one was made by Keras, not by that line
        self.tf1_graph_mode_noted = False  # the program runs in TensorFlow 1 graph mode: said once
        self.graph_mode_noted = set()  # (construct, file, line) of what graph mode would do differently, noted once


class TapeState(object):
    """The program's gradient tapes, by id: which record now, which are alive, what each watched."""

    def __init__(self):
        self.active_tapes = []  # tapes currently recording
        self.live_tapes = {}  # id(tape) -> first event seq while alive (pushed, no gradient asked yet)
        self.tape_windows = {}  # id(tape) -> first seq
        self.tape_watched_tensors = {}  # id(tape) -> {id(tensor): tensor}
        self.tape_objects = {}  # id(tape) -> tape (all tapes of the current step)
        self.gradient_counts = {}  # id(tape) -> gradient calls so far
        self.tape_serials = {}  # id(tape) -> line serial when it was first pushed


class VariableState(object):
    """The program's variables and Keras layers: where each was made, in what order, which tapes read it."""

    def __init__(self):
        self.var_sites = {}  # id(tf variable) -> (variable, created_at, layer object or None)
        self.layers = {}  # id(layer) -> (layer, class name, built_at)
        self.reads = {}  # id(tf variable) -> {"outside": site, "tapes": set(tape ids)}
        self.var_order = {}  # id(tf variable) -> creation number
        self.creating = 0  # inside how many variable creations
        self.layer_stack = []  # the Keras layers being called now, innermost last
        self.creator_scope = None  # the variable creator scope installed (kept: a collected scope exits)


class UpdateState(object):
    """The step's updates (see ``updates``): the gradients followed from their gradient call to the variables."""

    def __init__(self):
        self.grad_owner = {}  # id(gradient) -> key of the variable it was computed for
        self.gradient_sources = {}  # id(tf variable) -> (variable, key) of every source a gradient call had
        self.derived = {}  # id(tensor) -> (tensor, keys of the variables whose gradients it is computed from)
        self.followed_ops = 0  # ops seen since the last gradient call, while following its gradients
        self.following = False  # is the op callback that follows gradients on
        self.in_apply = False  # inside an optimizer's update
        self.in_manual_update = False  # inside a manual assign


class TraceState(object):
    """What the line tracer saw of the user's code: the statement running now and the values statements bound."""

    def __init__(self):
        self.current_line = None  # (file, line, function) of the user statement running now, or LIBRARY
        self.current_frame = None  # the user frame running now (None in a library): its instruction is the expression
        self.current_thread = None  # the thread whose line event set the two above: another thread's ops look for their own
        self.last_user_line = None  # (file, line, function) of the latest user line event
        self.events = []
        self.seq = 0
        self.objects = []  # tracked values, by index
        self.object_index = {}  # id -> index
        self.object_seq = {}  # index -> seq of the first binding seen
        self.pending = {}  # id(frame) -> [stmt key, before snapshot, file, func, line]
        self.line_serial = 0  # counts user line events: ops, conversions and assigns are stamped with it


class RecordState(object):
    """The records of what ran while a tape was alive (``records``): ops, tensors leaving TensorFlow, tensors made
    from NumPy."""

    def __init__(self):
        self.ops = []  # [OpRecord]
        self.conversions = []  # [Conversion]
        self.constants = []  # [Constant]
        self.op_callback = None


class State(object):
    """What the child has learnt, in parts by what they hold. The parts are made once and never replaced (modules
    bind them to names of their own for the hot paths); their fields may be."""

    def __init__(self):
        self.run = RunState()
        self.tapes = TapeState()
        self.variables = VariableState()
        self.updates = UpdateState()
        self.trace = TraceState()
        self.records = RecordState()
        # gradfix's own code is running (its hooks, its questions to the tape): the tracer and hooks ignore what
        # happens. Here rather than in a part: every line event and op tests it first.
        self.in_gradfix = False


STATE = State()
tf = None


# TensorFlow and the types the hooks test values against: set by ``entry.instrument`` once TensorFlow is
# imported (the child must be able to start, and say so, in an interpreter without it)
TENSOR_TYPES = ()
VARIABLE_TYPES = ()
DISTRIBUTED_TYPES = ()
NDARRAY = ()


def write_facts():
    """Write everything known so far; called after each gradient call and update, so a crash loses nothing."""
    if not STATE.run.facts_path:
        return
    fields = {
        "version": FACTS_VERSION,
        "status": STATE.run.status,
        "tensorflow_version": STATE.run.tf_version,
        "keras_version": STATE.run.keras_version,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "error": STATE.run.error,
        "exit_code": STATE.run.exit_code,
        "steps": STATE.run.steps,
        "stopped_after_steps": STATE.run.stopped_after_steps,
        "gradient_calls": STATE.run.gradient_calls,
        "applies": STATE.run.applies,
        "notes": STATE.run.notes,
        "capabilities": STATE.run.capabilities,
        "elapsed": round(time.time() - _START, 3),
    }
    # the schema's list decides what is sent: a field missing here fails loudly, one not listed is not sent
    data = {name: fields[name] for name in FACTS_FIELDS}
    temporary = STATE.run.facts_path + ".tmp"
    try:
        with open(temporary, "w") as out:
            json.dump(data, out, default=str)
        os.replace(temporary, STATE.run.facts_path)
    except Exception:
        pass


def fit_goes_on():
    """Will the outermost model.fit running now be cut short and the program go on after it?"""
    key = STATE.run.fit_keys[0] if STATE.run.fit_keys else None
    return key is not None and key not in STATE.run.fits_cut


def flush_output():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass


# --------------------------------------------------------------------------- ending the run

def end_run():
    """End the child here, with the facts written: nothing of the program runs after its last step.

    No exception travels through the program's frames, so none of its handlers, ``finally``
    blocks or threads can see gradfix stopping it."""
    sys.settrace(None)
    STATE.run.status = "ok"
    flush_output()
    write_facts()
    os._exit(0)
