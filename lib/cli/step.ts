import { formatFailure } from "../steps/failure";
import { stepDefinitions } from "../steps/registry";
import { runStep, StepFailure } from "../steps/run";
import { StepSpec } from "../steps/step";
import { openStore } from "../store/open";
import { parseArgs, UsageError } from "./args";

export const stepHelp = `usage: antidote-images step < spec.json

Builds one step from the JSON spec on stdin (what the program's command resources run), or finds it in the
artifact store. Prints exactly one JSON line on stdout: key, location, sha256, size, cached, log. The build log
goes to the store; on failure stderr ends with 'error: <image>: step <name> (<kind>) failed: <cause>', the few
log lines that show it and 'log: <path>', and the exit status is 1.

environment:
  ANTIDOTE_STORE          artifact store directory (default ~/.cache/antidote-images); with a shared store,
                          its local cache
  ANTIDOTE_SHARED_STORE   gs://bucket/prefix of a store shared between build hosts (see docs/scale-out.md)
  ANTIDOTE_CACHE_STORE    gs://bucket/prefix of a shared store read as a cache, never written (the nightly's;
                          see docs/scale-out.md)
  GOOGLE_CREDENTIALS      the bucket's credentials: a key as JSON, or a key file's path (else
                          GOOGLE_APPLICATION_CREDENTIALS, else Application Default Credentials)
  STORAGE_EMULATOR_HOST   a stand-in's endpoint instead of https://storage.googleapis.com`;

export async function stepCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, []);
  if (flags.help) {
    console.log(stepHelp);
    return 0;
  }
  const spec = parseStepSpec(await readStdin());
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  try {
    const result = await runStep(spec, {
      store: openStore(),
      definitions: stepDefinitions,
      signal: controller.signal,
    });
    process.stdout.write(JSON.stringify(result) + "\n");
    return 0;
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
    process.stderr.write(`${formatFailure({ headline: err.message, excerpt: err.excerpt, log: err.log })}\n`);
    return controller.signal.aborted ? 143 : 1;
  } finally {
    process.off("SIGTERM", stop);
    process.off("SIGINT", stop);
  }
}

/** The spec on stdin, its shape checked: a number or a list is a caller's mistake, not a crash. */
function parseStepSpec(input: string): StepSpec {
  let spec: unknown;
  try {
    spec = JSON.parse(input);
  } catch {
    throw new UsageError("stdin is not a JSON step spec");
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(spec)) {
    const got = spec === null ? "null" : Array.isArray(spec) ? "a list" : `a ${typeof spec}`;
    throw new UsageError(
      `the step spec must be a JSON object (kind, name, image, args, files, parents, key), got ${got}`,
    );
  }
  for (const field of ["kind", "name", "image", "key"]) {
    if (typeof spec[field] !== "string") throw new UsageError(`the step spec has no '${field}' string`);
  }
  for (const field of ["files", "parents"]) {
    const value = spec[field];
    if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) {
      throw new UsageError(`the step spec's '${field}' must be an object of strings (role → path or key)`);
    }
  }
  if (spec.ancestors !== undefined && !isObject(spec.ancestors)) {
    throw new UsageError("the step spec's 'ancestors' must be an object (key → spec)");
  }
  return spec as unknown as StepSpec;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
