// The Python interpreter the user chose: `gradfix.interpreter`, else the one the Python extension selected.
import * as vscode from "vscode";

const PYTHON_EXTENSION = "ms-python.python";

interface EnvironmentPath {
  id: string;
  path: string;
}

interface ResolvedEnvironment {
  executable?: { uri?: vscode.Uri };
}

// The part of the Python extension's API used here (`environments`, in its releases since 2023).
interface PythonApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): EnvironmentPath;
    resolveEnvironment(environment: EnvironmentPath | string): Promise<ResolvedEnvironment | undefined>;
    onDidChangeActiveEnvironmentPath: vscode.Event<unknown>;
  };
}

async function pythonApi(): Promise<PythonApi | undefined> {
  const extension = vscode.extensions.getExtension<PythonApi>(PYTHON_EXTENSION);
  if (extension === undefined) {
    return undefined;
  }
  try {
    return extension.isActive ? extension.exports : await extension.activate();
  } catch {
    return undefined; // a Python extension that fails to start leaves the other ways to find gradfix
  }
}

/** The Python extension's selected interpreter for `resource`, as an executable path. */
export async function selectedInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
  const environments = (await pythonApi())?.environments;
  if (environments === undefined) {
    return undefined;
  }
  const active = environments.getActiveEnvironmentPath(resource);
  // The path may name an environment's folder (conda): its executable is what runs `-m gradfix`.
  const resolved = await environments.resolveEnvironment(active).catch(() => undefined);
  return resolved?.executable?.uri?.fsPath ?? active.path;
}

/** `gradfix.interpreter` if set, else the Python extension's choice. */
export async function chosenInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
  const configured = vscode.workspace.getConfiguration("gradfix", resource).get<string>("interpreter", "").trim();
  return configured !== "" ? configured : selectedInterpreter(resource);
}

/** Calls `listener` when the Python extension's selected interpreter changes. */
export async function onInterpreterChange(listener: () => void): Promise<vscode.Disposable | undefined> {
  return (await pythonApi())?.environments?.onDidChangeActiveEnvironmentPath(listener);
}
