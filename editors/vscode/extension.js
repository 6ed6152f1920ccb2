// Starts `expc lsp` for .exp files; everything else (diagnostics, hover, completion, navigation,
// formatting, quick fixes) comes from the server. Plain JavaScript: nothing to build.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("expc");
  const [command, ...args] = config.get("server.command", ["expc", "lsp"]);
  const serverOptions = { command, args, transport: TransportKind.stdio };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "exp" }, { scheme: "untitled", language: "exp" }],
    initializationOptions: { debounce: config.get("server.debounce"), store: config.get("store") },
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.exp") },
  };
  client = new LanguageClient("expc", "expc", serverOptions, clientOptions);
  client.start();
  context.subscriptions.push(
    vscode.commands.registerCommand("expc.restartServer", () => client.restart()),
  );
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
