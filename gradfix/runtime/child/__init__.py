"""gradfix's child side: run a user's training program with TensorFlow instrumented.

This package runs under the user's own interpreter (``gradfix diagnose --python``), so it uses
the standard library and TensorFlow only: no gradfix imports outside this package, no third-party
packages. The parent (``gradfix.runtime.runner``) runs it by path:

    python .../gradfix/runtime/child/__main__.py TARGET [ARGS...]

with the environment variables named in ``schema`` (the facts file, the number of steps).
TARGET is ``train.py``, ``train.py:function`` or ``package.module:function`` (or
``package.module`` to run a module as ``__main__``).

What is recorded: where each variable was created and each Keras layer was constructed, every
``GradientTape.gradient`` call with its sources and which came back None, the step's
updates (a Keras or ``tf.compat.v1.train`` optimizer's ``apply``/``apply_gradients``/``minimize``,
an ``assign`` to a gradient's source), and for each variable without a gradient the *frontier*:
the last tensor still connected to it and the first statement whose result is no longer connected.

Modules: ``schema`` (the facts file's fields, shared with the parent), ``state`` (what is known,
writing it, ending the run), ``frames`` (the user's frames), ``values`` (describing variables and
tensors), ``tracer`` (the line tracer), ``ops`` (ops and conversions per statement), ``frontier``
(where a path breaks and what cut it), ``tf_hooks``, ``keras_hooks``, ``updates`` (assigns to a gradient's
source, and the gradients followed to them), ``target`` (running the program) and ``entry`` (installing the
hooks, ``main``). ``server.py`` is run by path, as ``__main__.py`` is: the warm server, which imports TensorFlow
once and forks each run from there (``gradfix.runtime.warm``).
"""
