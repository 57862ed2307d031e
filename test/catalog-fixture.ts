import * as fs from "fs";
import * as path from "path";
import { InputsSummary, sha256 } from "../lib/keys";
import { LocalStore } from "../lib/store/local";
import { tempDir } from "./helpers";

/** A curriculum repository outside this project: three images (two build on `base`) and an invalid one. */
export function curriculumRepo(): string {
  const repo = tempDir("curriculum");
  const image = (name: string, yaml: string) => {
    fs.mkdirSync(path.join(repo, "images", name), { recursive: true });
    fs.writeFileSync(path.join(repo, "images", name, "metadata.yaml"), yaml);
  };
  image("base", "name: base\ndescription: The minimal base.\nmaintainer: Lab Team\n");
  image(
    "router",
    [
      "name: router",
      "description: A router for BGP lessons.",
      "base: base",
      "capabilities: [ssh, vtysh, netconf]",
      "ports:",
      "  - {port: 22, name: ssh}",
      "  - {port: 830, name: netconf}",
      "interfaces:",
      "  - {name: eth0, purpose: management}",
      "  - {name: eth1, purpose: data, description: to the peer}",
      "resources: {memoryMiB: 1024, cpus: 2}",
      "services: [frr]",
      "",
    ].join("\n"),
  );
  image("tools", "name: tools\ndescription: A tools box.\nbase: base\ncapabilities: [ssh, python]\n");
  image("broken", "name: broken\ndescription: Bad port.\nports: [{port: 0, name: nothing}]\n");
  return repo;
}

/** A store that recorded builds of the repo's images: a kernel, and a disk of each image that boots it. */
export async function storeWithBuilds(): Promise<{ store: LocalStore; kernelKey: string }> {
  const store = new LocalStore(tempDir("catalog-store"));
  const summary = (kind: string, parents: Record<string, string> = {}): InputsSummary => ({
    kind,
    version: 1,
    args: null,
    files: {},
    parents,
  });
  const put = async (
    name: string,
    image: string,
    inputs: InputsSummary,
    outputs: Record<string, string | string[]>,
  ) => {
    const key = sha256(name);
    await store.put(key, { kind: inputs.kind, name, image, inputs }, async (dir) => {
      fs.writeFileSync(path.join(dir, "out"), name);
      return { primary: "out", outputs };
    });
    return key;
  };
  const kernelKey = await put("kernel-6.1", "kernel-6.1", summary("kernel"), { release: "6.1.192-antidote" });
  for (const image of ["base", "router", "tools"]) {
    await put(`${image}-disk`, image, summary("disk", { kernel: kernelKey }), {});
  }
  await put("router-container", "router", summary("container"), {
    published: ["127.0.0.1:5000/router@sha256:abc"],
  });
  return { store, kernelKey };
}
