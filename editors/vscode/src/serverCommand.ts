// How to start `gradfix lsp`: the configured command, else the chosen interpreter's gradfix, else `gradfix` on PATH.
import { execFile } from "child_process";
import * as path from "path";
import * as vscode from "vscode";
import { chosenInterpreter } from "./pythonInterpreter";

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from, for the output channel and error messages. */
  origin: string;
  /** The interpreter looked at first, when gradfix was not installed there. */
  withoutGradfix?: string;
}

/** Whether `file` is a Python interpreter (python, python3, python3.12, python.exe) rather than a gradfix command. */
export function isPython(file: string): boolean {
  return /^python[0-9.]*(\.exe)?$/i.test(path.basename(file));
}

function hasGradfix(python: string): Promise<boolean> {
  // find_spec, not import: a few milliseconds, and no TensorFlow loaded to answer
  const probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('gradfix.lsp') is None)";
  return new Promise((resolve) => {
    execFile(python, ["-c", probe], { timeout: 20000 }, (error) => resolve(error === null));
  });
}

export async function serverCommand(resource?: vscode.Uri): Promise<ServerCommand> {
  const configured = vscode.workspace.getConfiguration("gradfix", resource).get<string>("path", "").trim();
  if (configured !== "") {
    return isPython(configured)
      ? { command: configured, args: ["-m", "gradfix", "lsp"], origin: "gradfix.path" }
      : { command: configured, args: ["lsp"], origin: "gradfix.path" };
  }
  const python = await chosenInterpreter(resource);
  if (python !== undefined && (await hasGradfix(python))) {
    return { command: python, args: ["-m", "gradfix", "lsp"], origin: `the interpreter ${python}` };
  }
  return { command: "gradfix", args: ["lsp"], origin: "gradfix on PATH", withoutGradfix: python };
}
