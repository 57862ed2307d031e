import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT } from "../helpers";

const LIB = path.join(PROJECT_ROOT, "lib");

/** Every .ts file under lib/, relative to it. */
function libFiles(dir = LIB): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return libFiles(full);
    return e.name.endsWith(".ts") ? [path.relative(LIB, full)] : [];
  });
}

/** What a file imports: module names as written (`import … from`, `export … from`, `require`). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(LIB, file), "utf8");
  return [...text.matchAll(/(?:\bfrom\s+|\brequire\(\s*)"([^"]+)"/g)].map((m) => m[1]);
}

/** The lib/ folder (or top-level file) a relative import of `file` lands in. */
function folderOf(file: string, spec: string): string {
  return path.relative(LIB, path.resolve(LIB, path.dirname(file), spec)).split(path.sep)[0];
}

describe("Layers of lib/ (the import graph)", () => {
  it("lib/exec.ts, the process layer, imports nothing of the library", () => {
    assert.deepStrictEqual(
      importsOf("exec.ts").filter((spec) => spec.startsWith(".")),
      [],
    );
  });

  it("vm/, distro/ and store/ import nothing from steps/, runner/, components/, cli/ or engine/", () => {
    const higher = new Set(["steps", "runner", "components", "cli", "engine"]);
    const upward = libFiles()
      .filter((f) => ["vm", "distro", "store"].includes(f.split(path.sep)[0]))
      .flatMap((f) =>
        importsOf(f)
          .filter((spec) => spec.startsWith(".") && higher.has(folderOf(f, spec)))
          .map((spec) => `${f} imports ${spec}`),
      );
    assert.deepStrictEqual(upward, []);
  });

  it("only lib/exec.ts starts children asynchronously (spawn, exec, execFile, fork)", () => {
    const starters = libFiles()
      .filter((f) => f !== "exec.ts")
      .filter((f) => {
        const text = fs.readFileSync(path.join(LIB, f), "utf8");
        const names = /import\s*\{([^}]*)\}\s*from\s*"child_process"/.exec(text)?.[1].split(",") ?? [];
        return names.some((n) => ["spawn", "exec", "execFile", "fork"].includes(n.trim()));
      });
    assert.deepStrictEqual(starters, []);
  });
});

describe("The public API (lib/index.ts)", () => {
  it("exports the components an image composes and nothing else at run time", async () => {
    const api = await import("../../lib");
    assert.deepStrictEqual(Object.keys(api).sort(), [
      "Archive",
      "BootTest",
      "ContainerImage",
      "DEFAULT_KERNEL_FRAGMENTS",
      "Kernel",
      "LabImage",
      "Launcher",
      "Qcow2Disk",
      "Rootfs",
      "Template",
      // A vendor image's image.ts chains Qcow2Disk.import and BootTest itself, from its metadata.yaml.
      "bootTestArgsFromMetadata",
      "loadMetadata",
    ]);
  });
});
