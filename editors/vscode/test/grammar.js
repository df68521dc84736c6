// Grammar tests, run by `npm run test:grammar` (and build-vsix.sh):
// 1. snapshot tests: every example policy (examples/policies/*.route),
//    copied to test/snap/, tokenized and compared with its committed
//    `.snap` (vscode-tmgrammar-snap). `npm run test:grammar -- --update`
//    refreshes the copies and snapshots after an example or the grammar
//    changes; review the diff.
// 2. assertion tests: test/cases/*.route state the scope under each marked
//    column (vscode-tmgrammar-test).
"use strict";
const fs = require("fs");
const path = require("path");
const { spawnSync } = require("child_process");

const here = path.join(__dirname, "..");
const examples = path.join(here, "..", "..", "examples", "policies");
const snap = path.join(__dirname, "snap");
const update = process.argv.includes("--update");
const bin = (name) => path.join(here, "node_modules", ".bin", name);

let stale = [];
const wanted = fs.readdirSync(examples).filter((f) => f.endsWith(".route")).sort();
for (const f of wanted) {
  const src = fs.readFileSync(path.join(examples, f), "utf8");
  const copy = path.join(snap, f);
  if (!fs.existsSync(copy) || fs.readFileSync(copy, "utf8") !== src) {
    if (update) fs.writeFileSync(copy, src);
    else stale.push(f);
  }
}
for (const f of fs.readdirSync(snap).filter((f) => f.endsWith(".route"))) {
  if (!wanted.includes(f)) {
    if (update) {
      fs.rmSync(path.join(snap, f));
      fs.rmSync(path.join(snap, f + ".snap"), { force: true });
    } else stale.push(f);
  }
}
if (stale.length > 0) {
  console.error(`the example policies changed (${stale.join(", ")}): run \`npm run test:grammar -- --update\` in editors/vscode and review the snapshots`);
  process.exit(1);
}

const grammar = path.join(here, "syntaxes", "route.tmLanguage.json");
const run = (cmd, args) => {
  const r = spawnSync(bin(cmd), args, { cwd: here, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run("vscode-tmgrammar-snap", ["-g", grammar, "-s", "source.route", ...(update ? ["-u"] : []), "test/snap/*.route"]);
run("vscode-tmgrammar-test", ["-g", grammar, "test/cases/*.route"]);
