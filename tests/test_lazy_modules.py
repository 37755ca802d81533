"""LibCST's matchers are loaded when a fix needs them, not by every check (see gradfix.lazy)."""

import subprocess
import sys
import textwrap

CLEAN = "import tensorflow as tf\n\ndef step(model, x):\n    with tf.GradientTape() as tape:\n        loss = model(x)\n    return tape.gradient(loss, model.trainable_variables)\n"


def _matchers_state(code: str) -> str:
    probe = "import sys\n" + code + textwrap.dedent("""
        module = sys.modules.get("libcst.matchers")
        print("absent" if module is None else "loaded" if type(module).__name__ == "module" else "deferred")
    """)
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def test_a_check_that_finds_nothing_does_not_load_libcsts_matchers(tmp_path):
    path = tmp_path / "train.py"
    path.write_text(CLEAN)
    assert _matchers_state(f"from gradfix.engine import check_paths\nlist(check_paths([{str(path)!r}]))") == "deferred"


def test_the_matchers_load_on_first_use_and_work():
    code = "from gradfix.lazy import lazy_module\nm = lazy_module('libcst.matchers')\nimport libcst\nassert m.matches(libcst.Name('x'), m.Name('x'))"
    assert _matchers_state(code) == "loaded"


def test_the_language_server_loads_them_before_its_threads_start():
    assert _matchers_state("from gradfix.lsp.server import GradfixServer\nGradfixServer()") == "loaded"
