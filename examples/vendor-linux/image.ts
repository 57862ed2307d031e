// A vendor's Linux-based disk image, imported and provisioned offline (libguestfs), then boot-tested with the login,
// resources and boot-time budget its metadata.yaml declares. See README.md for where vendor.json comes from.
import * as fs from "fs";
import * as path from "path";
import { BootTest, bootTestArgsFromMetadata, loadMetadata, Qcow2Disk } from "../../lib";

const metadata = loadMetadata(__dirname);
const { username, password } = metadata.credentials;

/** What the vendor publishes: the disk's URL (or a local path, relative to this folder), its format and sha256. */
const vendor = JSON.parse(fs.readFileSync(path.join(__dirname, "vendor.json"), "utf8")) as {
  source: string;
  sha256: string;
  format: "qcow2" | "raw" | "vmdk" | "vdi";
};

export const disk = Qcow2Disk.import("vendor-linux-disk", {
  image: metadata.name,
  source: /^https?:\/\//.test(vendor.source) ? vendor.source : path.resolve(__dirname, vendor.source),
  sha256: vendor.sha256,
  format: vendor.format,
  provision: {
    user: username,
    password,
    sudo: true,
    sshPasswordLogin: true,
    files: [{ source: path.join(__dirname, "motd"), path: "/etc/motd", mode: "0644" }],
    firstBoot: "date -u +%FT%TZ > /var/lib/antidote-first-boot",
  },
});

export const bootTest = new BootTest("vendor-linux-boot-test", {
  ...bootTestArgsFromMetadata(metadata),
  image: metadata.name,
  disk,
  testScript: path.join(__dirname, "test.sh"),
});
