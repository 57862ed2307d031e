import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { loadImages } from "../../lib/program";
import { typeCheckImages } from "../../lib/typecheck";
import { PROJECT_ROOT, tempDir } from "../helpers";
import { useMocks } from "../mocks";

/** `<images>/<name>/image.ts` and its other files; returns the images folder. */
function writeImage(images: string, name: string, files: Record<string, string>): string {
  fs.mkdirSync(path.join(images, name), { recursive: true });
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(images, name, file), text);
  return images;
}

describe("type check of the images' TypeScript", () => {
  it("reports a type error in image.ts as tsc does, file:line:col, before anything registers", async function () {
    this.timeout(180_000);
    const images = writeImage(path.join(tempDir("typecheck"), "images"), "web", {
      "metadata.yaml": "name: web\ndescription: A web server.\n",
      "image.ts": [
        `import { LabImage } from ${JSON.stringify(path.join(PROJECT_ROOT, "lib"))};`,
        "",
        'export const image = new LabImage("web", { dir: __dirname, packages: "nginx" });',
        "",
      ].join("\n"),
    });
    const resources = await useMocks({ "antidote-images:imagesDir": images });
    assert.throws(
      () => loadImages(),
      (err: Error) => {
        assert.ok(pulumi.RunError.isInstance(err), `a RunError, got ${err.name}`);
        const file = path.relative(process.cwd(), path.join(images, "web", "image.ts"));
        assert.strictEqual(
          err.message,
          `the images do not type-check:\n${file}:3:60 - error TS2322: Type 'string' is not assignable to type 'string[]'.`,
        );
        return true;
      },
    );
    assert.deepStrictEqual(resources, [], "nothing registered");
  });

  it("keeps the verdict until a file the check read changes, an imported one too", function () {
    this.timeout(120_000);
    const images = writeImage(path.join(tempDir("typecheck"), "images"), "web", {
      "image.ts": 'import { port } from "./port";\nexport const listen: number = port;\n',
      "port.ts": "export const port = 80;\n",
    });
    const cache = tempDir("typecheck-cache");
    const roots = [path.join(images, "web", "image.ts")];
    const check = () => typeCheckImages(roots, images, cache);
    assert.deepStrictEqual(check(), []);
    const [verdict] = fs.readdirSync(cache);
    assert.strictEqual(fs.readdirSync(cache).length, 1, "one verdict, no partial file");
    // A verdict marked by hand: a second check that answers with the mark read it instead of checking again.
    const record = path.join(cache, verdict);
    const kept = JSON.parse(fs.readFileSync(record, "utf8")) as { errors: string[] };
    fs.writeFileSync(record, JSON.stringify({ ...kept, errors: ["from the kept verdict"] }));
    assert.deepStrictEqual(check(), ["from the kept verdict"]);

    fs.writeFileSync(path.join(images, "web", "port.ts"), 'export const port = "80";\n');
    const file = path.relative(process.cwd(), roots[0]);
    assert.deepStrictEqual(check(), [
      `${file}:2:14 - error TS2322: Type 'string' is not assignable to type 'number'.`,
    ]);
    assert.strictEqual(check().length, 1, "a failing verdict is kept too");
  });
});
