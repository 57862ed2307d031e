import * as fs from "fs";
import * as path from "path";
import * as ts from "typescript";
import { canonicalJson, sha256 } from "./keys";
import { defaultStoreDir } from "./store/local";

/** Where verdicts are kept: the user's cache folder, beside (not in) the default store. */
export function typeCheckCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const defaultStore = defaultStoreDir({ ...env, ANTIDOTE_STORE: "" });
  return path.join(path.dirname(defaultStore), "antidote-images-typecheck");
}

/** A verdict: the checked program's inputs (file → sha256) and the errors found. */
interface Verdict {
  inputs: Record<string, string>;
  errors: string[];
}

/**
 * Type-checks `roots` (the images' `image.ts` files) as `tsc` would with the project's tsconfig, and returns the
 * errors in files under `dir`, each as `tsc` prints it (`file:line:col - error TSnnnn: message`). The program itself
 * is only transpiled, so without this a type error would surface later as an odd argument error, or not at all.
 *
 * A cold check parses the library and its packages' declarations (seconds); the verdict is kept in `cacheDir`, keyed
 * by the compiler's version, the options and the roots, and stands while every file the check read still has its
 * contents (a package's files by its package.json).
 */
export function typeCheckImages(roots: string[], dir: string, cacheDir: string): string[] {
  const configFile = ts.findConfigFile(process.cwd(), ts.sys.fileExists);
  const options: ts.CompilerOptions = {
    ...(configFile ? parsedOptions(configFile) : {}),
    noEmit: true,
  };
  const record = path.join(
    cacheDir,
    `${sha256(canonicalJson({ compiler: ts.version, options, roots: [...roots].sort() }))}.json`,
  );
  const cached = readVerdict(record);
  if (cached && Object.entries(cached.inputs).every(([file, hash]) => hashOf(file) === hash)) {
    return cached.errors;
  }

  const program = ts.createProgram(roots, options);
  const dirs = [dir, fs.realpathSync(dir)];
  const inDir = (file: string) => dirs.some((d) => !path.relative(d, file).startsWith(".."));
  const errors = program
    .getSourceFiles()
    .filter((file) => inDir(file.fileName))
    .flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)])
    .filter((d) => d.category === ts.DiagnosticCategory.Error)
    .map(formatDiagnostic);
  const inputs: Record<string, string> = {};
  for (const file of [configFile, ...program.getSourceFiles().map((f) => inputOf(f.fileName))]) {
    const hash = file && hashOf(file);
    if (file && hash) inputs[file] = hash;
  }
  writeVerdict(record, { inputs, errors });
  return errors;
}

function parsedOptions(configFile: string): ts.CompilerOptions {
  const parsed = ts.getParsedCommandLineOfConfigFile(
    configFile,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(formatDiagnostic(d));
      },
    },
  );
  return parsed?.options ?? {};
}

/** What stands for a source file in the verdict's inputs: the file, or for a package's file its package.json. */
function inputOf(file: string): string {
  const pkg = /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(file);
  return pkg ? path.join(pkg[1], "package.json") : file;
}

function hashOf(file: string): string | undefined {
  try {
    return sha256(fs.readFileSync(file));
  } catch {
    return undefined;
  }
}

/** As `tsc` prints a diagnostic: `file:line:col - error TSnnnn: message`, a chained message indented below. */
function formatDiagnostic(d: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(d.messageText, "\n  ");
  if (!d.file || d.start === undefined) return `error TS${d.code}: ${message}`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  const file = path.relative(process.cwd(), d.file.fileName);
  return `${file}:${line + 1}:${character + 1} - error TS${d.code}: ${message}`;
}

function readVerdict(record: string): Verdict | undefined {
  try {
    return JSON.parse(fs.readFileSync(record, "utf8")) as Verdict;
  } catch {
    return undefined;
  }
}

/**
 * Written whole or not at all: programs running at once may check the same roots. A cache that cannot be written
 * (a read-only home) costs the next run a cold check, and fails nothing.
 */
function writeVerdict(record: string, verdict: Verdict): void {
  const partial = `${record}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(record), { recursive: true });
    fs.writeFileSync(partial, JSON.stringify(verdict));
    fs.renameSync(partial, record);
  } catch {
    fs.rmSync(partial, { force: true });
  }
}
