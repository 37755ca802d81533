// "gradfix: Diagnose this file": the server's `gradfix.diagnose` on the active file, under a cancellable progress.
import * as path from "path";
import * as vscode from "vscode";
import { ExecuteCommandRequest, LanguageClient, WorkDoneProgress } from "vscode-languageclient/node";
import { chosenInterpreter } from "./pythonInterpreter";

export const SERVER_COMMAND = "gradfix.diagnose";

/** What the server answers: the run's status and a one-line summary (it also shows the summary itself). */
export interface DiagnoseSummary {
  status: string;
  message?: string;
  error?: string;
  findings?: number;
  files?: string[];
}

let runs = 0;

export async function diagnoseFile(client: LanguageClient | undefined): Promise<DiagnoseSummary | undefined> {
  const document = vscode.window.activeTextEditor?.document;
  if (document === undefined || document.languageId !== "python") {
    vscode.window.showWarningMessage("gradfix: open the Python file that runs a training step, then diagnose it");
    return undefined;
  }
  if (client === undefined || !client.isRunning()) {
    vscode.window.showErrorMessage("gradfix: the gradfix language server is not running (see the gradfix output)");
    return undefined;
  }
  // The run reads the file on disk, and its findings land only on a buffer that matches it.
  if (document.isUntitled || (document.isDirty && !(await document.save()))) {
    vscode.window.showWarningMessage("gradfix: save the file before diagnosing it: the run reads it from disk");
    return undefined;
  }
  const settings = vscode.workspace.getConfiguration("gradfix", document.uri);
  const request: { target: string; python?: string; timeout?: number } = { target: document.uri.fsPath };
  const python = await chosenInterpreter(document.uri);
  if (python !== undefined) {
    request.python = python; // the program runs where its packages are, whichever Python runs the server
  }
  const timeout = settings.get<number>("diagnoseTimeout", 0);
  if (timeout > 0) {
    request.timeout = timeout;
  }
  const token = `gradfix-diagnose-${process.pid}-${++runs}`;
  const title = `gradfix: diagnosing ${path.basename(document.uri.fsPath)}`;
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    async (progress, cancel) => {
      // The server reports its stage ("running its first training step, 3 s") on the token given with the request.
      const reports = client.onProgress(WorkDoneProgress.type, token, (value) => {
        if (value.kind !== "end" && value.message) {
          progress.report({ message: value.message });
        }
      });
      try {
        return (await client.sendRequest(
          ExecuteCommandRequest.type,
          { command: SERVER_COMMAND, arguments: [request], workDoneToken: token },
          cancel,
        )) as DiagnoseSummary;
      } catch (error) {
        if (!cancel.isCancellationRequested) {
          vscode.window.showErrorMessage(`gradfix: the diagnosis failed: ${error instanceof Error ? error.message : error}`);
        }
        return undefined;
      } finally {
        reports.dispose();
      }
    },
  );
}
