"""Running the target: a file, a file's function, a module, or a module's function."""

import os
import sys


def resolve_target(target, cwd=None):
    """('file', path, function or None) or ('module', name, function or None); a relative file is taken relative to
    ``cwd`` (default: the current folder; gradfix's warm start asks from another folder than the run's)."""
    function = None
    spec = target
    if ":" in target:
        head, _, tail = target.rpartition(":")
        if head and tail and tail.replace("_", "a").replace(".", "a").isalnum() and not os.path.exists(_at(target, cwd)):
            spec, function = head, tail
    if spec.endswith(".py") or os.path.exists(_at(spec, cwd)):
        return "file", os.path.abspath(_at(spec, cwd)), function
    return "module", spec, function


def _at(path, cwd):
    return path if cwd is None else os.path.join(cwd, path)


def run_target(target, args):
    import runpy
    kind, spec, function = resolve_target(target)
    if kind == "file":
        sys.argv = [spec] + list(args)
        sys.path.insert(0, os.path.dirname(spec))
        if function is None:
            runpy.run_path(spec, run_name="__main__")
        else:
            namespace = runpy.run_path(spec, run_name="__gradfix_target__")
            fn = namespace.get(function)
            if fn is None:
                raise LookupError("%s defines no %s" % (spec, function))
            fn()
    else:
        sys.argv = [spec] + list(args)
        sys.path.insert(0, os.getcwd())
        if function is None:
            runpy.run_module(spec, run_name="__main__", alter_sys=True)
        else:
            import importlib
            module = importlib.import_module(spec)
            fn = getattr(module, function, None)
            if fn is None:
                raise LookupError("module %s defines no %s" % (spec, function))
            fn()
