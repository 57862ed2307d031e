// The library's public API: the components an image's `image.ts` composes, their arguments, and the metadata an
// image declares. Steps, stores, the runner and the engine are internal.
export { Archive, type ArchiveArgs } from "./components/archive";
export { BootTest, type BootTestArgs, bootTestArgsFromMetadata } from "./components/boot-test";
export { ContainerImage, type ContainerImageArgs } from "./components/container-image";
export { DEFAULT_KERNEL_FRAGMENTS, Kernel, type KernelArgs } from "./components/kernel";
export { LabImage, type LabImageArgs } from "./components/lab-image";
export { Launcher, type LauncherArgs } from "./components/launcher";
export {
  type DiskProvisioningArgs,
  Qcow2Disk,
  type Qcow2DiskArgs,
  type Qcow2DiskImportArgs,
} from "./components/qcow2-disk";
export { Rootfs, type RootfsArgs, type RootfsFileArgs } from "./components/rootfs";
export { Template, type TemplateArgs } from "./components/template";
export { loadMetadata } from "./metadata/metadata";
export type { ImageMetadata } from "./metadata/schema";
