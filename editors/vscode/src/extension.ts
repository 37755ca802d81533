// gradfix for VS Code: starts `gradfix lsp` for Python files and adds "gradfix: Diagnose this file".
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";
import { diagnoseFile } from "./diagnose";
import { onInterpreterChange } from "./pythonInterpreter";
import { serverCommand } from "./serverCommand";

// Settings whose change needs a new server (diagnoseTimeout is read at each run).
const SERVER_SETTINGS = ["gradfix.path", "gradfix.interpreter", "gradfix.debounceMs"];

let client: LanguageClient | undefined;
let output: vscode.OutputChannel;

function onPath(command: string): boolean {
  if (path.isAbsolute(command) || command.includes(path.sep)) {
    return fs.existsSync(command);
  }
  const extensions = process.platform === "win32" ? (process.env.PATHEXT ?? ".EXE").split(";") : [""];
  return (process.env.PATH ?? "").split(path.delimiter).some((folder) =>
    extensions.some((extension) => folder !== "" && fs.existsSync(path.join(folder, command + extension))));
}

async function start(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const server = await serverCommand(folder);
  if (!onPath(server.command)) {
    const missing = server.withoutGradfix !== undefined
      ? `gradfix is installed neither in ${server.withoutGradfix} nor on PATH`
      : "gradfix is not on PATH and no Python interpreter is selected";
    const message = server.origin === "gradfix.path"
      ? `gradfix: gradfix.path names ${server.command}, which is not found`
      : `gradfix: ${missing}: install it (pip install gradfix) or set gradfix.path`;
    output.appendLine(message);
    vscode.window.showErrorMessage(message);
    return;
  }
  output.appendLine(`gradfix: starting ${[server.command, ...server.args].join(" ")} (${server.origin})`);
  const serverOptions: ServerOptions = { command: server.command, args: server.args, options: { cwd: folder?.fsPath } };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file", language: "python" }],
    initializationOptions: { debounceMs: vscode.workspace.getConfiguration("gradfix", folder).get<number>("debounceMs", 50) },
    outputChannel: output,
  };
  client = new LanguageClient("gradfix", "gradfix", serverOptions, clientOptions);
  await client.start();
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running !== undefined) {
    await running.stop().catch((error) => output.appendLine(`gradfix: stopping the server: ${error}`));
  }
}

async function restart(): Promise<void> {
  await stop();
  await start().catch((error) => {
    output.appendLine(`gradfix: the server did not start: ${error}`);
    vscode.window.showErrorMessage(`gradfix: the language server did not start: ${error instanceof Error ? error.message : error}`);
  });
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("gradfix");
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand("gradfix.diagnoseFile", () => diagnoseFile(client)),
    vscode.commands.registerCommand("gradfix.restartServer", restart),
    vscode.workspace.onDidChangeConfiguration((change) => {
      if (SERVER_SETTINGS.some((setting) => change.affectsConfiguration(setting))) {
        void restart();
      }
    }),
  );
  const interpreterWatch = await onInterpreterChange(() => {
    const settings = vscode.workspace.getConfiguration("gradfix");
    if (settings.get<string>("path", "") === "" && settings.get<string>("interpreter", "") === "") {
      void restart(); // the server ran in the interpreter just deselected
    }
  });
  if (interpreterWatch !== undefined) {
    context.subscriptions.push(interpreterWatch);
  }
  await restart();
}

export function deactivate(): Promise<void> {
  return stop();
}
