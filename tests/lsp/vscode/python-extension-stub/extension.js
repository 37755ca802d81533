// The part of the Python extension's API (`environments`) that gradfix's extension calls, answering with the
// interpreter in python.defaultInterpreterPath.
const vscode = require("vscode");

function activate() {
  const changed = new vscode.EventEmitter();
  const selected = () => vscode.workspace.getConfiguration("python").get("defaultInterpreterPath", "python");
  return {
    environments: {
      getActiveEnvironmentPath: () => ({ id: selected(), path: selected() }),
      resolveEnvironment: async (environment) => {
        const path = typeof environment === "string" ? environment : environment.path;
        return { id: path, path, executable: { uri: vscode.Uri.file(path) } };
      },
      onDidChangeActiveEnvironmentPath: changed.event,
    },
  };
}

module.exports = { activate };
