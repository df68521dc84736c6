// Starts `routec lsp` for `.route` files. Everything the editor shows
// (diagnostics, hover, navigation, completion, formatting) comes from the
// server; this file only finds the binary and wires the client.

import { ExtensionContext, workspace } from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions, TransportKind } from "vscode-languageclient/node";

let client: LanguageClient | undefined;

export async function activate(context: ExtensionContext): Promise<void> {
  const command = workspace.getConfiguration("routec").get<string>("path") || "routec";
  const serverOptions: ServerOptions = {
    run: { command, args: ["lsp"], transport: TransportKind.stdio },
    debug: { command, args: ["lsp"], transport: TransportKind.stdio, options: { env: { ...process.env, RUST_LOG: "debug" } } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file", language: "route" }],
    synchronize: { fileEvents: workspace.createFileSystemWatcher("**/*.route") },
  };
  client = new LanguageClient("routec", "routec lsp", serverOptions, clientOptions);
  context.subscriptions.push(client);
  await client.start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
