import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import { loadMetadata } from "../metadata/metadata";
import { ImageMetadata } from "../metadata/schema";
import { BootTest, BootTestArgs, bootTestArgsFromMetadata } from "./boot-test";
import { ContainerImage, ContainerImageArgs } from "./container-image";
import { Kernel } from "./kernel";
import { Qcow2Disk, Qcow2DiskArgs } from "./qcow2-disk";
import { Rootfs, RootfsArgs } from "./rootfs";

export interface LabImageArgs {
  /**
   * The image's folder: `metadata.yaml` (required), `install.sh` and `test.sh` (used when present). Pass `__dirname`
   * from `image.ts`.
   */
  dir: string;
  /**
   * The image this one builds on: its root filesystem is the starting point (no second debootstrap). Must match
   * `base` in metadata.yaml.
   * @default none: a base image, bootstrapped from Debian's archive
   */
  base?: LabImage;
  /** Debian packages installed on top of the base. @default [] */
  packages?: string[];
  /** Supplementary groups of the login user, created when missing (e.g. "frrvty"). @default [] */
  groups?: string[];
  /**
   * The kernel the disk boots.
   * @default the base image's kernel, else the one shared kernel built from `kernel/` fragments
   */
  kernel?: Kernel;
  /**
   * An Ansible playbook provisioning the image instead of (or besides) install.sh, relative to `dir`, in a folder of
   * its own (e.g. "ansible/site.yml"): run after the packages, before install.sh (see Rootfs's `playbook`).
   * @default none
   */
  playbook?: string;
  /** Further Rootfs settings (pre/post scripts, files, suite, mirror…), passed through. @default {} */
  rootfs?: Omit<
    RootfsArgs,
    "base" | "image" | "packages" | "groups" | "install" | "playbook" | "user" | "password"
  >;
  /** Further disk settings (size, kernel command line, UEFI), passed through. @default {} */
  disk?: Omit<Qcow2DiskArgs, "rootfs" | "kernel" | "image">;
  /** Further boot test settings (timeouts, accelerator), passed through. @default {} */
  bootTest?: Omit<BootTestArgs, "disk" | "image" | "testScript">;
  /**
   * Further container settings (repository, launcher, health start period), passed through; `false` builds no
   * container (an image only other images build on).
   * @default {}: a container of the tested disk on the shared launcher, published as the stack says
   */
  container?: Omit<ContainerImageArgs, "disk" | "bootTest" | "allowUntested" | "metadata" | "image"> | false;
}

let sharedKernel: Kernel | undefined;

/** The kernel every image boots unless it says otherwise: built once, from the standard fragments. */
export function defaultKernel(): Kernel {
  sharedKernel ??= new Kernel("kernel");
  return sharedKernel;
}

/**
 * A whole lab image from its folder: Rootfs → Qcow2Disk (with the shared Kernel) → BootTest → ContainerImage, with the login,
 * NICs, services and resources its `metadata.yaml` declares. The components stay usable one by one; this is the
 * ten-line form:
 *
 *     export const image = new LabImage("frr", { dir: __dirname, base: debianBase, packages: ["frr"] });
 */
export class LabImage extends pulumi.ComponentResource {
  readonly name: string;
  readonly metadata: ImageMetadata;
  readonly rootfs: Rootfs;
  readonly kernel: Kernel;
  readonly disk: Qcow2Disk;
  readonly bootTest: BootTest;
  /** The lab image as a Docker image; none when `container: false`. */
  readonly container?: ContainerImage;

  constructor(name: string, args: LabImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("antidote:images:LabImage", name, {}, opts);
    this.name = name;
    this.metadata = loadMetadata(args.dir);
    const where = `${name} (${path.join(args.dir, "metadata.yaml")})`;
    if (this.metadata.name !== name) {
      throw new Error(
        `${where}: name: expected '${name}' (the LabImage's name), got '${this.metadata.name}'`,
      );
    }
    if (this.metadata.base !== args.base?.name) {
      throw new Error(
        `${where}: base: metadata says ${this.metadata.base ? `'${this.metadata.base}'` : "none"}, ` +
          `image.ts passes ${args.base ? `'${args.base.name}'` : "none"}; they must agree`,
      );
    }
    const optional = (file: string) =>
      fs.existsSync(path.join(args.dir, file)) ? path.join(args.dir, file) : undefined;
    const { username, password } = this.metadata.credentials;
    const child = { parent: this };

    this.rootfs = new Rootfs(
      `${name}-rootfs`,
      {
        ...args.rootfs,
        image: name,
        base: args.base?.rootfs,
        packages: args.packages ?? [],
        groups: args.groups ?? [],
        lessonServices: this.metadata.services,
        install: optional("install.sh"),
        playbook: args.playbook === undefined ? undefined : path.resolve(args.dir, args.playbook),
        user: username,
        password,
        hostname: args.rootfs?.hostname ?? name,
      },
      child,
    );
    this.kernel = args.kernel ?? args.base?.kernel ?? defaultKernel();
    this.disk = new Qcow2Disk(
      `${name}-disk`,
      { ...args.disk, image: name, rootfs: this.rootfs, kernel: this.kernel },
      child,
    );
    this.bootTest = new BootTest(
      `${name}-boot-test`,
      {
        ...bootTestArgsFromMetadata(this.metadata),
        ...args.bootTest,
        image: name,
        disk: this.disk,
        testScript: optional("test.sh"),
      },
      child,
    );
    if (args.container !== false) {
      this.container = new ContainerImage(
        `${name}-container`,
        {
          kernel: this.kernel,
          ...args.container,
          image: name,
          disk: this.disk,
          bootTest: this.bootTest,
          metadata: this.metadata,
        },
        child,
      );
    }
    this.registerOutputs({
      rootfs: this.rootfs.key,
      kernel: this.kernel.key,
      disk: this.disk.key,
      bootTest: this.bootTest.key,
      container: this.container?.key,
    });
  }
}
