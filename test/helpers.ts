import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { LocalStore } from "../lib/store/local";

/** The project directory (where Pulumi.yaml is). */
export const PROJECT_ROOT = path.resolve(__dirname, "..");

/** A fresh, empty directory under the system temp dir; removed by the caller or left for the OS. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `antidote-${prefix}-`));
}

/**
 * The store integration tests share, so the kernel and root filesystems are built once per machine and reused by
 * the disk, boot and container tests: `$ANTIDOTE_TEST_STORE`, else `<tmp>/antidote-test-store`.
 */
export function sharedTestStore(): LocalStore {
  return new LocalStore(process.env.ANTIDOTE_TEST_STORE ?? path.join(os.tmpdir(), "antidote-test-store"));
}
