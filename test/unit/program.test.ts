import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { loadImages } from "../../lib/program";
import { tempDir } from "../helpers";
import { useMocks } from "../mocks";

/** An images folder with these files (path under the folder → contents). */
function imagesDir(files: Record<string, string>): string {
  const dir = path.join(tempDir("program"), "images");
  for (const [file, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

/** The error `loadImages` fails with for this images folder (and these selected images). */
async function loadError(dir: string, images?: string[]): Promise<Error> {
  await useMocks({
    "antidote-images:imagesDir": dir,
    ...(images ? { "antidote-images:images": JSON.stringify(images) } : {}),
  });
  try {
    loadImages();
  } catch (err) {
    return err as Error;
  }
  assert.fail("loadImages did not fail");
}

describe("the program (Pulumi mocks)", () => {
  it("names the image file a throw at module load comes from", async () => {
    const dir = imagesDir({ "web/image.ts": 'throw new Error("no such package: ngnix");\n' });
    const err = await loadError(dir);
    assert.ok(pulumi.RunError.isInstance(err), `a RunError (no stack trace), got ${err.name}`);
    assert.strictEqual(
      err.message,
      `${path.relative(process.cwd(), dir)}/web/image.ts: no such package: ngnix`,
    );
  });

  it("names the image file whose function threw, not the image that imported it", async () => {
    const dir = imagesDir({
      "base/image.ts": [
        "function makeImage(): never {",
        '  throw new Error("thrown in base\'s own function");',
        "}",
        "export const image = makeImage();",
        "",
      ].join("\n"),
      "web/image.ts": 'import { image } from "../base/image";\nexport const web = image;\n',
    });
    const err = await loadError(dir, ["web"]);
    assert.strictEqual(
      err.message,
      `${path.relative(process.cwd(), dir)}/base/image.ts: thrown in base's own function`,
    );
  });
});
