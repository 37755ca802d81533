"""A real LSP client (pytest-lsp) talking to `gradfix lsp` started as a process, and helpers to await what it sends."""

from __future__ import annotations

import asyncio
import pathlib
import sys

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features
from pytest_lsp.client import LanguageClient as _Client

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
WAIT = 60.0  # seconds before a test gives up waiting for the server (a loaded CI machine)


def pytest_configure(config):
    config.addinivalue_line("markers", "tensorflow: runs TensorFlow in a child process")


def _client() -> LanguageClient:
    """pytest-lsp's test client, which also records every publish and wakes waiters on each message."""
    client = _Client(converter_factory=default_converter)
    client.published = []
    client.arrived = asyncio.Event()
    features = dict(DEFAULT_CLIENT_FEATURES)

    def wrap(method):
        inner = features[method]

        def handler(ls, params):  # pygls passes the client to a first parameter named `ls`
            result = inner(ls, params)
            if method == types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS:
                ls.published.append(params)
            ls.arrived.set()
            return result

        return handler

    for method in (types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE, types.PROGRESS):
        features[method] = wrap(method)
    register_lsp_features(client, features)
    client.registrations = []

    @client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register_capability(ls, params: types.RegistrationParams):  # as VS Code, whose capabilities the tests claim
        ls.registrations.extend(params.registrations)
        ls.arrived.set()

    return client


async def wait_until(client, predicate, timeout: float = WAIT):
    """Wait for the server's messages until ``predicate()`` is true; returns its value."""
    async def until():
        while not (value := predicate()):
            client.arrived.clear()
            await client.arrived.wait()
        return value

    return await asyncio.wait_for(until(), timeout)


def published_for(client, uri: str, version: int | None = None):
    """The last diagnostics published for ``uri`` (for ``version``, when given), or None."""
    for params in reversed(client.published):
        if params.uri == uri and (version is None or params.version == version):
            return params
    return None


SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "gradfix", "lsp"], client_factory=_client)


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, tmp_path):
    capabilities = pytest_lsp.client_capabilities("visual-studio-code")
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=capabilities,
        root_uri=tmp_path.as_uri(),
        workspace_folders=[types.WorkspaceFolder(uri=tmp_path.as_uri(), name="work")],
        initialization_options={"debounceMs": 20},
    ))
    yield
    await lsp_client.shutdown_session()


def open_document(client, path: pathlib.Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(
        uri=uri, language_id="python", version=version, text=path.read_text(encoding="utf-8") if text is None else text)))
    return uri


def replace_text(client, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
    ))


def edits_of(action: types.CodeAction, uri: str) -> list[types.TextEdit]:
    edit = action.edit
    if edit.document_changes:
        return [e for change in edit.document_changes if change.text_document.uri == uri for e in change.edits]
    return list(edit.changes[uri])


@pytest.fixture
def copy_fixture(tmp_path):
    """Copy a fixture program into the test's workspace; returns its path there."""

    def copy(relative: str, name: str | None = None) -> pathlib.Path:
        source = FIXTURES / relative
        target = tmp_path / (name or source.name)
        target.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        return target

    return copy
