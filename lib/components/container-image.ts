import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { Json } from "../keys";
import { loadMetadata } from "../metadata/metadata";
import { ImageMetadata } from "../metadata/schema";
import { publishSettings, pushImage, uploadToBucket } from "../publishing";
import { containerStep } from "../steps/container";
import { Launcher, sharedLauncher } from "./launcher";
import { Qcow2Disk } from "./qcow2-disk";
import { BuiltStep, StepComponent } from "./step-command";

export interface ContainerImageArgs {
  /** The disk the container boots (a `Qcow2Disk`); the image holds it at `/disk/disk.qcow2`, never modified. */
  disk: BuiltStep;
  /**
   * The disk's `BootTest`. Nothing is built or published unless it passed: its artifact is a parent of the image, and
   * the pushes and uploads depend on it. Required unless `allowUntested`.
   * @default none (refused unless `allowUntested: true`)
   */
  bootTest?: BuiltStep;
  /** Build and publish a disk that has no boot test (vendor images that cannot boot here). @default false */
  allowUntested?: boolean;
  /**
   * The image's metadata, or the folder holding its `metadata.yaml`: labels, forwarded ports, NIC count, memory
   * and CPU defaults.
   * @default the `metadata.yaml` of `images/<image>`
   */
  metadata?: ImageMetadata | string;
  /** The base image with QEMU and the launch script. @default the program's shared launcher ({@link sharedLauncher}) */
  launcher?: Launcher;
  /**
   * The disk's kernel (a `Kernel`, the one its `Qcow2Disk` was built with): the image holds it and the launcher boots
   * it directly on QEMU's `microvm` with the disk's command line, skipping firmware and GRUB (docs/container.md); its
   * `.deb` is uploaded next to the disk when the stack has a bucket.
   * @default none: the launcher boots the disk by firmware and GRUB, as an imported vendor disk
   */
  kernel?: BuiltStep;
  /**
   * Boot the VM once at build time, up to the point where it becomes a VM of its own (`antidote-resume`), and keep the
   * saved VM in the image: a start under TCG restores it instead of booting (docs/container.md, "Snapshot start").
   * Needs `kernel`.
   * @default true when `kernel` is given
   */
  snapshot?: boolean;
  /** Repository name, locally (`antidote-images/<repository>`) and in the stack's registry. @default the image name */
  repository?: string;
  /** Seconds the VM may take to boot before failed health checks count (TCG on a busy host is slow). @default 600 */
  healthStartSeconds?: number;
  /** Image the container belongs to. @default the component's name */
  image?: string;
}

/** Kernels already uploaded in this program run: images sharing a kernel upload its package once. */
const kernelUploads = new WeakMap<BuiltStep, string>();

/**
 * A lab image as a Docker image: the shared launcher layer plus the disk and metadata, tagged
 * `antidote-images/<repository>:<key>` in dockerd, then pushed to the stack's registry (tags: the key and the moving
 * tag) and its disk uploaded to the stack's bucket — all only after the boot test passed.
 */
export class ContainerImage extends StepComponent {
  readonly metadata: ImageMetadata;
  /** The image in dockerd (`antidote-images/<repository>:<key>`), once built. */
  readonly localImage: pulumi.Output<string>;
  /** `<registry>/<repository>@sha256:…` once pushed; none when the stack pushes nowhere. */
  readonly reference?: pulumi.Output<string>;
  /** Object name of the disk in the stack's bucket; none when it has no bucket. */
  readonly diskObject?: string;
  /** Object name of the kernel package in the bucket, when a kernel was given. */
  readonly kernelObject?: string;
  /** Object name of an imported disk's original in the bucket (`Qcow2Disk.import`). */
  readonly originalObject?: string;

  constructor(name: string, args: ContainerImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("antidote:images:ContainerImage", name, {}, opts);
    const image = args.image ?? name;
    if (!args.bootTest && !args.allowUntested) {
      throw new Error(
        `${image}: ${name}: bad argument bootTest: expected the disk's BootTest (or allowUntested: true), got nothing`,
      );
    }
    this.metadata =
      typeof args.metadata === "object"
        ? args.metadata
        : loadMetadata(args.metadata ?? path.resolve("images", image));
    if (args.snapshot && !args.kernel) {
      throw new Error(
        `${image}: ${name}: bad argument snapshot: expected a kernel to go with it (a snapshot is of a direct boot), ` +
          `got snapshot: true and no kernel`,
      );
    }
    const repository = args.repository ?? image;
    const launcher = args.launcher ?? sharedLauncher();
    this.buildStep(name, {
      step: containerStep,
      image,
      args: {
        repository: `antidote-images/${repository}`,
        metadata: this.metadata as unknown as Json,
        untested: !args.bootTest,
        healthStartSeconds: args.healthStartSeconds ?? 600,
        snapshot: args.snapshot ?? Boolean(args.kernel),
      },
      parents: {
        disk: args.disk,
        launcher,
        ...(args.bootTest ? { bootTest: args.bootTest } : {}),
        ...(args.kernel ? { kernel: args.kernel } : {}),
      },
    });
    this.localImage = this.result.apply((r) => String(r.outputs.ref));

    const settings = publishSettings();
    // The boot test is a parent of the build already; naming it keeps the rule visible to whoever reads the graph.
    const gate = [this.command, ...(args.bootTest ? [args.bootTest.command] : [])];
    if (settings.registry) {
      const pushed = pushImage(this, name, {
        source: this.localImage,
        repository,
        key: this.key,
        settings: { ...settings, registry: settings.registry },
        dependsOn: gate,
      });
      this.reference = pushed.reference;
    }
    if (settings.bucket) {
      const diskObject = `disks/${image}/${args.disk.key}.qcow2`;
      uploadToBucket(this, `${name}-disk-upload`, {
        bucket: settings.bucket,
        objectName: diskObject,
        file: args.disk.result.apply((r) => r.primary),
        sha256: args.disk.result.apply((r) => r.sha256),
        dependsOn: gate,
      });
      this.diskObject = diskObject;
      if (args.disk instanceof Qcow2Disk && args.disk.original) {
        this.originalObject = this.uploadOriginal(
          name,
          image,
          args.disk,
          args.disk.original,
          settings.bucket,
          gate,
        );
      }
      if (args.kernel) this.kernelObject = this.uploadKernel(name, args.kernel, settings.bucket, gate);
    }
    this.registerStepOutputs({
      localImage: this.localImage,
      reference: this.reference,
      diskObject: this.diskObject,
      kernelObject: this.kernelObject,
      originalObject: this.originalObject,
    });
  }

  /** The vendor's file an imported disk was converted from, beside the disk, named by its sha256 as the vendor's. */
  private uploadOriginal(
    name: string,
    image: string,
    disk: BuiltStep,
    original: { sha256: string; format: string },
    bucket: string,
    gate: pulumi.Resource[],
  ): string {
    const objectName = `disks/${image}/original/${original.sha256}.${original.format}`;
    uploadToBucket(this, `${name}-original-upload`, {
      bucket,
      objectName,
      file: disk.result.apply((r) => path.join(r.location, String(r.outputs.original))),
      sha256: pulumi.output(original.sha256),
      dependsOn: gate,
    });
    return objectName;
  }

  private uploadKernel(name: string, kernel: BuiltStep, bucket: string, gate: pulumi.Resource[]): string {
    const uploaded = kernelUploads.get(kernel);
    if (uploaded) return uploaded;
    const objectName = `kernels/${kernel.key}.deb`;
    const deb = kernel.result.apply((r) => path.join(r.location, String(r.outputs.deb)));
    uploadToBucket(this, `${name}-kernel-upload`, {
      bucket,
      objectName,
      file: deb,
      dependsOn: [...gate, kernel.command],
    });
    kernelUploads.set(kernel, objectName);
    return objectName;
  }
}
