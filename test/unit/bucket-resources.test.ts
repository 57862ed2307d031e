import * as assert from "assert";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { FileAssetValue } from "../../lib/engine/properties";
import { resourcePerformers } from "../../lib/runner/docker-resources";
import { GcsStandIn } from "../gcs-stand-in";
import { tempDir } from "../helpers";

const BUCKET = "antidote-disks";
const UPLOAD = "gcp:storage/bucketObject:BucketObject";

/** A file and the inputs `uploadToBucket` (lib/publishing.ts) registers for it, as the engine hands them over. */
function diskUpload(content: Buffer, options: { sha256?: boolean } = {}) {
  const file = path.join(tempDir("bucket-object"), "disk.qcow2");
  fs.writeFileSync(file, content);
  const sha256 = createHash("sha256").update(content).digest("hex");
  const name = `disks/frr/${sha256}.qcow2`;
  return {
    file,
    name,
    inputs: {
      bucket: BUCKET,
      name,
      source: new FileAssetValue(file),
      contentType: "application/octet-stream",
      cacheControl: "public, max-age=31536000, immutable",
      ...(options.sha256 === false ? {} : { metadata: { sha256 } }),
    },
  };
}

describe("the runner's bucket objects (gcp.storage.BucketObject through @google-cloud/storage, on the stand-in)", () => {
  const standIn = new GcsStandIn();
  const performer = resourcePerformers[UPLOAD];
  let emulatorBefore: string | undefined;
  const uploads = () => standIn.requests.filter((r) => r.startsWith("POST /upload/"));

  before(async () => {
    emulatorBefore = process.env.STORAGE_EMULATOR_HOST;
    // The runner reaches a stand-in as a build host would: the library reads this variable.
    process.env.STORAGE_EMULATOR_HOST = await standIn.start();
  });
  after(async () => {
    if (emulatorBefore === undefined) delete process.env.STORAGE_EMULATOR_HOST;
    else process.env.STORAGE_EMULATOR_HOST = emulatorBefore;
    await standIn.stop();
  });
  beforeEach(() => standIn.reset());

  it("is a resource type the runner performs", () => {
    assert.ok(performer, `${UPLOAD} has a performer`);
    assert.strictEqual(performer.kind, "gcs upload");
  });

  it("uploads the file under its content-addressed name with the program's fields and the sha256 metadata", async () => {
    const content = randomBytes(4096);
    const { name, inputs } = diskUpload(content);
    assert.strictEqual(performer.describe(inputs), `gs://${BUCKET}/${name}`);
    const { outputs, changed } = await performer.perform(inputs);
    assert.strictEqual(changed, true);
    const object = standIn.buckets.get(BUCKET)?.get(name);
    assert.ok(object);
    assert.ok(object.content.equals(content));
    assert.strictEqual(object.contentType, "application/octet-stream");
    assert.strictEqual(object.cacheControl, "public, max-age=31536000, immutable");
    assert.deepStrictEqual(object.metadata, inputs.metadata);
    assert.strictEqual(outputs.md5hash, createHash("md5").update(content).digest("base64"));
    assert.strictEqual(outputs.outputName, name);
    assert.strictEqual(outputs.generation, object.generation);
    assert.match(uploads()[0], /ifGenerationMatch=0/, "created only if absent");
  });

  it("reports an object already there with the same sha256 as cached, without uploading it again", async () => {
    const { inputs } = diskUpload(randomBytes(4096));
    const first = await performer.perform(inputs);
    standIn.requests.length = 0;
    const again = await performer.perform(inputs);
    assert.strictEqual(again.changed, false);
    assert.deepStrictEqual(again.outputs, first.outputs);
    assert.deepStrictEqual(uploads(), [], "nothing uploaded");
  });

  it("compares by MD5 when there is no sha256 (a kernel package): the same bytes are cached", async () => {
    const content = randomBytes(2048);
    const { inputs } = diskUpload(content, { sha256: false });
    assert.strictEqual((await performer.perform(inputs)).changed, true);
    standIn.requests.length = 0;
    assert.strictEqual((await performer.perform(inputs)).changed, false);
    assert.deepStrictEqual(uploads(), []);
  });

  it("fails on other content under the name, naming the object, and neither deletes nor overwrites it", async () => {
    const { name, inputs } = diskUpload(randomBytes(1024), { sha256: false });
    const foreign = Buffer.from("other bytes");
    standIn.buckets.set(
      BUCKET,
      new Map([
        [
          name,
          {
            content: foreign,
            generation: 1,
            timeCreated: new Date().toISOString(),
            contentType: "application/octet-stream",
          },
        ],
      ]),
    );
    await assert.rejects(
      performer.perform(inputs),
      new RegExp(`gs://${BUCKET}/${name} exists with other content \\(MD5 .*\\) than .*disk\\.qcow2`),
    );
    assert.ok(standIn.buckets.get(BUCKET)?.get(name)?.content.equals(foreign), "kept as it was");
    assert.deepStrictEqual(
      standIn.requests.filter((r) => !r.startsWith("GET")),
      [],
      "no write, no delete",
    );
  });

  it("names the object and the missing file when the step's file is gone", async () => {
    const { file, name, inputs } = diskUpload(Buffer.from("x"));
    fs.rmSync(file);
    await assert.rejects(
      performer.perform(inputs),
      new RegExp(`gs://${BUCKET}/${name}: the file to upload, ${file}, does not exist`),
    );
  });
});
