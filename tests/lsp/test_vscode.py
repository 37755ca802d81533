"""The VS Code extension in editors/vscode: built and packaged with npm and vsce as CI does, then installed into a real
VS Code (code-server, in headless Chromium) that opens a buggy program, shows gradfix's squiggle and Problems entry,
and applies the quick fix, which must leave the file as `gradfix fix --apply` would.

The second test also runs "gradfix: Diagnose this file" on the fixed program (TensorFlow, in a child process) and
waits for its outcome. It needs Chromium (Debian's `chromium`) and code-server, which it installs from npm into
~/.cache/gradfix-tests the first time (code-server builds native modules there: g++, make, libkrb5-dev, libxkbfile-dev
and libsecret-1-dev). The server runs in the interpreter selected in the Python extension, here a stand-in for it
(tests/lsp/vscode/python-extension-stub: the real one comes from Microsoft's marketplace, out of reach here). `GRADFIX_SCREENSHOTS=DIR` copies its screenshots (PNG) to DIR as well as the test's folder."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "editors" / "vscode"
UI_TOOLS = pathlib.Path(__file__).with_name("vscode")  # package.json and lock of code-server and puppeteer-core
CASE = ROOT / "fixtures" / "computed-outside-tape" / "forward_pass_before_tape.py"
FIX_TITLE = "Fix GF001"  # the title of GF001's quick fix starts so (gradfix.lsp.convert.fix_title)
CODE_SERVER_NODE = "20"  # the Node.js major version code-server 4.100 runs on (its install refuses others)

pytestmark = pytest.mark.slow  # installs npm packages and starts an editor: outside the fast lane


def run(command: list[str], cwd: pathlib.Path, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def vsix(tmp_path_factory) -> pathlib.Path:
    """The extension packaged from a copy of its committed files, as `.ci/run` packages it."""
    if shutil.which("npm") is None:
        pytest.skip("npm (Node.js) is not installed: the extension is built with it")
    folder = tmp_path_factory.mktemp("vscode-extension") / "vscode"
    shutil.copytree(EXTENSION, folder, ignore=shutil.ignore_patterns("node_modules", "out", "*.vsix"))
    run(["npm", "ci", "--no-audit", "--no-fund"], folder, timeout=900)
    run(["npm", "run", "compile"], folder, timeout=300)
    run(["npx", "vsce", "package", "--out", "gradfix.vsix"], folder, timeout=300)
    return folder / "gradfix.vsix"


def test_the_vsix_holds_the_bundled_extension_and_its_manifest(vsix):
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("extension/package.json"))
        main = "extension/" + os.path.normpath(manifest["main"]).removeprefix("./")
        assert main in names, sorted(names)
        bundle = archive.read(main).decode()
    assert not any("node_modules/" in name for name in names), "node_modules belong in the bundle, not beside it"
    # vscode-languageclient is bundled: the extension needs only the editor's `vscode` and Node's own modules
    required = set(re.findall(r"""require\(["']([^"']+)["']\)""", bundle))
    builtin = set(subprocess.run(["node", "-p", "require('module').builtinModules.join('\\n')"],
                                 capture_output=True, text=True, check=True).stdout.split())
    assert "vscode" in required
    assert required - builtin - {"vscode"} == set(), "modules left out of the bundle"
    assert "onLanguage:python" in manifest["activationEvents"]
    commands = {command["command"]: command["title"] for command in manifest["contributes"]["commands"]}
    assert commands["gradfix.diagnoseFile"] == "gradfix: Diagnose this file"
    settings = manifest["contributes"]["configuration"]["properties"]
    assert {"gradfix.path", "gradfix.interpreter", "gradfix.debounceMs"} <= set(settings)
    assert "extension/LICENSE.txt" in names or "extension/LICENSE" in names


@pytest.fixture(scope="module")
def python_extension_stub(vsix, tmp_path_factory) -> pathlib.Path:
    """tests/lsp/vscode/python-extension-stub packaged: the Python extension's `environments` API, answering with
    python.defaultInterpreterPath."""
    folder = tmp_path_factory.mktemp("python-extension") / "stub"
    shutil.copytree(UI_TOOLS / "python-extension-stub", folder)
    vsce = vsix.parent / "node_modules" / ".bin" / "vsce"
    run([str(vsce), "package", "--skip-license", "--out", "python.vsix"], folder, timeout=120)
    return folder / "python.vsix"


def chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def node_major() -> str:
    return subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True,
                          check=True).stdout.strip()


# VS Code's search runs ripgrep, which @vscode/ripgrep (1.15.11 in code-server 4.100.3) downloads from GitHub when it
# is installed; it takes a download it finds in its cache folder under TMPDIR instead, so the machine's own `rg`
# (Debian's ripgrep) is put there, under the names it looks for.
RIPGREP_PACKAGE = "1.15.11"
RIPGREP_ASSETS = ("ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz", "ripgrep-v13.0.0-10-aarch64-unknown-linux-musl.tar.gz")


def ripgrep_download_cache(tmp: pathlib.Path) -> pathlib.Path:
    cache = tmp / f"vscode-ripgrep-cache-{RIPGREP_PACKAGE}"
    cache.mkdir(parents=True, exist_ok=True)
    for asset in RIPGREP_ASSETS:
        with tarfile.open(cache / asset, "w:gz") as archive:
            archive.add(shutil.which("rg"), arcname="rg")
    return tmp


@pytest.fixture(scope="module")
def ui_tools() -> pathlib.Path:
    """code-server and puppeteer-core, installed from the lock in tests/lsp/vscode once per lock (minutes, once)."""
    if shutil.which("npm") is None:
        pytest.skip("npm (Node.js) is not installed: code-server comes from npm")
    if node_major() != CODE_SERVER_NODE:
        pytest.skip(f"code-server 4.100 runs on Node.js {CODE_SERVER_NODE}; this machine has Node.js {node_major()}")
    lock = (UI_TOOLS / "package-lock.json").read_bytes()
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache")
    tools = cache / "gradfix-tests" / f"vscode-ui-{hashlib.sha256(lock).hexdigest()[:12]}"
    done = tools / "installed"
    if not done.exists():
        missing = [tool for tool in ("g++", "make") if shutil.which(tool) is None]
        if not any(pathlib.Path(folder, "gssapi", "gssapi.h").exists() for folder in ("/usr/include", "/usr/local/include")):
            missing.append("libkrb5-dev")  # the first native module code-server builds needs its headers
        if missing:
            pytest.skip(f"code-server, from npm, builds native modules, and {', '.join(missing)} is missing "
                        "(apt-get install g++ make pkg-config libkrb5-dev libxkbfile-dev libsecret-1-dev ripgrep)")
        tools.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(UI_TOOLS / name, tools / name)
        env = dict(os.environ,
                   npm_config_unsafe_perm="true",  # code-server's install insists on it under root
                   npm_config_yes="true")  # node-pty's install runs `npx node-gyp`, which would ask first
        headers = pathlib.Path(shutil.which("node")).resolve().parents[1]
        if (headers / "include" / "node" / "node.h").exists():
            env["npm_config_nodedir"] = str(headers)  # build against the installed headers: none to download
        if shutil.which("rg"):
            env["TMPDIR"] = str(ripgrep_download_cache(tools / "tmp"))
        installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=tools, env=env, capture_output=True,
                                   text=True, timeout=1800, stdin=subprocess.DEVNULL, check=False)
        if installed.returncode != 0:
            tail = " ".join((installed.stdout + installed.stderr).strip().splitlines()[-3:])
            pytest.skip("code-server could not be installed from npm (it builds native modules: needs g++, make, "
                        f"libkrb5-dev, libxkbfile-dev, libsecret-1-dev; ripgrep): {tail}")
        done.write_text("ok\n")
    return tools


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"code-server exited {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"code-server did not answer {url} within {timeout} s")


# What a user would have turned off to see the file and nothing else (a fresh profile opens welcome pages).
EDITOR_SETTINGS = {
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": False,
    "security.workspace.trust.enabled": False,
    "telemetry.telemetryLevel": "off",
    "extensions.autoCheckUpdates": False,
    "extensions.autoUpdate": False,
    "update.mode": "none",
    "editor.minimap.enabled": False,
    "chat.commandCenter.enabled": False,
}


@pytest.mark.tensorflow  # "gradfix: Diagnose this file" runs the fixed program's training step
@pytest.mark.skipif(chromium() is None, reason="no Chromium to show VS Code in (Debian: apt-get install chromium)")
def test_vscode_shows_the_finding_applies_its_quick_fix_and_diagnoses_the_file(vsix, python_extension_stub, ui_tools,
                                                                              tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    program = project / "train.py"
    shutil.copy(CASE, program)
    profile, extensions = tmp_path / "profile", tmp_path / "extensions"
    (profile / "User").mkdir(parents=True)
    # The interpreter selected in the Python extension (here its stand-in: the real one comes from a marketplace
    # code-server does not reach) runs the server and the diagnosed program.
    settings = {**EDITOR_SETTINGS, "python.defaultInterpreterPath": sys.executable}
    (profile / "User" / "settings.json").write_text(json.dumps(settings))
    (tmp_path / "code-server.yaml").write_text("auth: none\n")
    code_server = [str(ui_tools / "node_modules" / ".bin" / "code-server"), "--config", str(tmp_path / "code-server.yaml"),
                   "--user-data-dir", str(profile), "--extensions-dir", str(extensions)]
    env = dict(os.environ)
    run([*code_server, "--install-extension", str(python_extension_stub), "--install-extension", str(vsix)], tmp_path,
        timeout=120, env=env)

    port = free_port()
    with open(tmp_path / "code-server.log", "w") as log:
        editor = subprocess.Popen(
            [*code_server, "--bind-addr", f"127.0.0.1:{port}", "--disable-telemetry", "--disable-update-check",
             "--disable-workspace-trust", "--disable-getting-started-override", str(project)],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", editor, timeout=60)
        shots = tmp_path / "screenshots"
        shots.mkdir()
        driven = subprocess.run(
            ["node", str(UI_TOOLS / "drive.cjs"), f"http://127.0.0.1:{port}/?folder={project}", program.name, FIX_TITLE,
             str(shots)],
            env=dict(env, NODE_PATH=str(ui_tools / "node_modules"), CHROMIUM=chromium()),
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    finally:
        os.killpg(editor.pid, signal.SIGTERM)
        editor.wait(timeout=30)
    if os.environ.get("GRADFIX_SCREENSHOTS"):
        for shot in shots.glob("*.png"):
            shutil.copy(shot, pathlib.Path(os.environ["GRADFIX_SCREENSHOTS"]) / shot.name)
    assert driven.returncode == 0, driven.stderr
    seen = json.loads(driven.stdout.strip().splitlines()[-1])
    assert "error" not in seen, f"after {seen['steps']}: {seen['error']}\n(screenshots in {shots})"
    # the server ran in the interpreter the Python extension selected (its output channel says how it was started)
    [output] = profile.glob("logs/*/exthost*/output_logging_*/*gradfix.log")
    assert f"starting {sys.executable} -m gradfix lsp" in output.read_text(), output.read_text()
    assert any("GF001" in problem for problem in seen["problems"]), seen["problems"]
    assert any(fix.startswith(FIX_TITLE) for fix in seen["quickFixes"]), seen["quickFixes"]
    assert "GF001" in seen["hover"], seen["hover"]
    for shot in ("vscode-squiggle.png", "vscode-quickfix.png", "vscode-diagnose.png"):
        assert (shots / shot).read_bytes().startswith(b"\x89PNG"), shot
    # the quick fix made the edit `gradfix fix --apply` makes
    fixed = subprocess.run([sys.executable, "-m", "gradfix", "fix", "--apply", "-", "--stdin-filename", "train.py"],
                           input=CASE.read_text(), capture_output=True, text=True, cwd=project, timeout=120, check=False)
    assert fixed.stdout and fixed.stdout != CASE.read_text(), fixed.stderr
    assert program.read_text() == fixed.stdout
    # the diagnosis ran the fixed program's training step and found every variable trained
    assert "every trainable variable gets a gradient" in seen["diagnosis"], seen["diagnosis"]
