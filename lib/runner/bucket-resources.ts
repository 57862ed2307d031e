import { createHash } from "crypto";
import * as fs from "fs";
import { pipeline } from "stream/promises";
import { FileAssetValue } from "../engine/properties";
import { GcsBucket, GcsObject } from "../store/gcs-bucket";
import { Performed, PerformOptions, PROVIDER_TIMEOUT_MS, ResourcePerformer } from "./performer";

/** The inputs of a `gcp.storage.BucketObject` the runner reads (what `uploadToBucket` in lib/publishing.ts gives). */
interface BucketObjectInputs {
  bucket: string;
  /** Content-addressed: the name never points at other bytes. */
  name: string;
  source?: unknown;
  contentType?: string;
  cacheControl?: string;
  /** `{ sha256 }` for a disk; none for a kernel package. */
  metadata?: Record<string, string>;
}

/**
 * `gcp:storage/bucketObject:BucketObject`: an upload through `@google-cloud/storage` (credentials, endpoint,
 * retries, resumable uploads and checksums as for the shared store, `GcsBucket`). An object already under the name
 * with the same content (its sha256 metadata, else its MD5) is the upload done before: reported cached, not sent
 * again. Nothing is ever deleted or overwritten (the program sets `retainOnDelete`: a lab may pin an old disk), so an
 * object of other content under a content-addressed name fails the upload, naming it, and stays as it is.
 */
export const bucketObjectPerformer: ResourcePerformer = {
  kind: "gcs upload",
  computed: ["crc32c", "md5hash", "mediaLink", "selfLink", "outputName", "generation"],
  describe: (inputs) => `gs://${String(inputs.bucket)}/${String(inputs.name)}`,
  async perform(raw, { timeoutMs = PROVIDER_TIMEOUT_MS }: PerformOptions = {}): Promise<Performed> {
    const inputs = raw as unknown as BucketObjectInputs;
    const where = `gs://${inputs.bucket}/${inputs.name}`;
    if (!(inputs.source instanceof FileAssetValue)) {
      throw new Error(
        `${where}: expected a file asset as the object's source, got ${JSON.stringify(inputs.source)}`,
      );
    }
    const file = inputs.source.path;
    if (!fs.existsSync(file)) throw new Error(`${where}: the file to upload, ${file}, does not exist`);
    const bucket = new GcsBucket(inputs.bucket);
    const upload = async (): Promise<Performed> => {
      const existing = await bucket.stat(inputs.name);
      if (existing) return { outputs: outputsOf(await sameContent(existing, inputs, file)), changed: false };
      const created = await bucket.create(
        inputs.name,
        { file },
        { contentType: inputs.contentType, cacheControl: inputs.cacheControl, metadata: inputs.metadata },
      );
      if (created) return { outputs: outputsOf(created), changed: true };
      // Another run created it between the look and the upload.
      const raced = await bucket.stat(inputs.name);
      if (!raced)
        throw new Error(`${where}: the service refused the upload as existing, then had no such object`);
      return { outputs: outputsOf(await sameContent(raced, inputs, file)), changed: false };
    };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`${where}: the upload of ${file} took longer than its ${timeoutMs / 60_000} minutes`),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([upload(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  },
};

/**
 * `existing` when it has the content to be uploaded, else an error: by the sha256 recorded with both (a disk's), else
 * by MD5 (a kernel package's; reading the file is needed only then).
 */
async function sameContent(
  existing: GcsObject,
  inputs: BucketObjectInputs,
  file: string,
): Promise<GcsObject> {
  const wanted = inputs.metadata?.sha256;
  const recorded = existing.metadata?.sha256;
  const bySha256 = wanted !== undefined && recorded !== undefined;
  const ours = bySha256 ? `sha256 ${wanted}` : `MD5 ${await md5Of(file)}`;
  const theirs = bySha256 ? `sha256 ${recorded}` : `MD5 ${existing.md5Hash ?? "(none)"}`;
  if (ours === theirs) return existing;
  throw new Error(
    `gs://${inputs.bucket}/${inputs.name} exists with other content (${theirs}) than ${file} (${ours}); ` +
      `a content-addressed name never points at other bytes, and objects are never overwritten: ` +
      `find out what wrote it, and delete it only if no lab uses it`,
  );
}

/** The provider's computed outputs of an object. */
function outputsOf(object: GcsObject): Record<string, unknown> {
  return {
    crc32c: object.crc32c,
    md5hash: object.md5Hash,
    mediaLink: object.mediaLink,
    selfLink: object.selfLink,
    outputName: object.name,
    generation: Number(object.generation),
  };
}

async function md5Of(file: string): Promise<string> {
  const hash = createHash("md5");
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest("base64");
}
