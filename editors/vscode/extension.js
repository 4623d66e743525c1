// Starts `peak lsp` (or the command in the setting peak.server.command) for .peak files.
// The server does the work: diagnostics, hover, completion, go-to-definition, formatting
// and quick fixes. See docs/editor.md.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("peak")
    .get("server.command", ["peak", "lsp"]);
  const server = { command, args, options: { cwd: workspaceFolder() } };
  client = new LanguageClient(
    "peak",
    "peak language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "peak" }, { scheme: "untitled", language: "peak" }] },
  );
  context.subscriptions.push(client);
  return client.start();
}

function workspaceFolder() {
  const folders = vscode.workspace.workspaceFolders;
  return folders && folders.length ? folders[0].uri.fsPath : undefined;
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
