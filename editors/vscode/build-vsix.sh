#!/usr/bin/env bash
# Builds the VS Code extension from a clean clone, in one command:
#
#   editors/vscode/build-vsix.sh
#
# installs the exact npm dependencies (package-lock.json), compiles the
# TypeScript, checks the grammar against the example policies' snapshots,
# and packages editors/vscode/routec-policy.vsix with @vscode/vsce.
# Needs node 20 and npm. Install the result with
# `code --install-extension editors/vscode/routec-policy.vsix`.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run compile
npm run test:grammar
npm run package
echo "built $(pwd)/routec-policy.vsix" >&2
