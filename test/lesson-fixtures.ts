import * as assert from "assert";
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { Problem } from "../lib/schema-errors";
import { PROJECT_ROOT } from "./helpers";

/** The lesson fixtures: configurations (`*.json`) and the files they name. */
export const LESSON_FIXTURES = path.join(PROJECT_ROOT, "test/fixtures/lessons");

/** The ```json blocks of docs/lessons.md: examples an author copies (their sources are in LESSON_FIXTURES). */
export function docExamples(): string[] {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, "docs/lessons.md"), "utf8");
  return [...doc.matchAll(/^```json\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
}

export interface Validated {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `antidote-images lesson validate ARGS` in `cwd`. */
export async function lessonValidate(args: string[], cwd: string): Promise<Validated> {
  const cli = path.join(PROJECT_ROOT, "bin/antidote-images.js");
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [cli, "lesson", "validate", ...args],
      {
        cwd,
        encoding: "utf8",
      },
    );
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    return { status: e.code ?? null, stdout: e.stdout, stderr: e.stderr };
  }
}

export interface FileVerdict {
  file: string;
  valid: boolean;
  problems: Problem[];
}

/** `lesson validate ARGS --json` in `cwd`: the exit status and one verdict per file. */
export async function lessonValidateJson(
  args: string[],
  cwd: string,
): Promise<{ status: number | null; files: FileVerdict[] }> {
  const r = await lessonValidate([...args, "--json"], cwd);
  assert.strictEqual(r.stderr, "", r.stderr);
  const files = r.stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as FileVerdict);
  return { status: r.status, files };
}
