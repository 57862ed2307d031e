import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";
import { ContainerImage } from "../../lib/components/container-image";
import { Launcher } from "../../lib/components/launcher";
import { Template } from "../../lib/components/template";
import { loadMetadata } from "../../lib/metadata/metadata";
import { publishSettings } from "../../lib/publishing";
import { PROJECT_ROOT, tempDir } from "../helpers";
import { useMocks } from "../mocks";

const metadata = loadMetadata(path.join(PROJECT_ROOT, "images", "debian-base"));

describe("publishing settings: the tags and repositories a push would use, checked before anything registers", () => {
  for (const [movingTag, why] of [
    ["nightly build", "a space"],
    ["-latest", "a leading '-'"],
    [".latest", "a leading '.'"],
    ["latest/1", "a '/'"],
    ["x".repeat(129), "129 characters"],
    ["a".repeat(64), "the form of a content key, which tags never move from"],
  ]) {
    it(`refuses the moving tag with ${why}`, async () => {
      await useMocks({ "antidote-images:movingTag": movingTag });
      assert.throws(
        () => publishSettings(),
        (err: Error) =>
          err.message.startsWith(`antidote-images:movingTag: expected a Docker tag`) &&
          err.message.includes(`got '${movingTag}'`),
      );
    });
  }

  it("accepts the tags Docker accepts", async () => {
    for (const movingTag of ["latest", "v1.2_rc-3", "X".repeat(128), "0"]) {
      await useMocks({ "antidote-images:movingTag": movingTag });
      assert.strictEqual(publishSettings().movingTag, movingTag);
    }
  });

  for (const registry of [
    "Docker.io/Antidote",
    "antidote",
    "ghcr.io//x",
    "ghcr.io/a b",
    "https://ghcr.io/x",
  ]) {
    it(`refuses the registry '${registry}'`, async () => {
      await useMocks({ "antidote-images:registry": registry });
      assert.throws(
        () => publishSettings(),
        (err: Error) =>
          err.message.startsWith("antidote-images:registry: expected a registry host") &&
          err.message.includes(`got '${registry}'`),
      );
    });
  }

  it("accepts registries with a port, a namespace, or none at all", async () => {
    for (const [registry, expected] of [
      ["127.0.0.1:5000", "127.0.0.1:5000"],
      ["127.0.0.1:5000/", "127.0.0.1:5000"],
      ["docker.io/antidote", "docker.io/antidote"],
      ["localhost:5000/labs/nightly", "localhost:5000/labs/nightly"],
      ["none", undefined],
    ]) {
      await useMocks({ "antidote-images:registry": registry as string });
      assert.strictEqual(publishSettings().registry, expected);
    }
  });

  it("fails the container image before its key tag registers when the moving tag is bad", async () => {
    const resources = await useMocks({ "antidote-images:movingTag": "nightly build" });
    const file = path.join(tempDir("publishing-unit"), "disk.txt");
    fs.writeFileSync(file, "disk");
    const disk = new Template("disk-p1", { template: file, image: "debian-base" });
    assert.throws(
      () =>
        new ContainerImage("vendor-container", {
          image: "vendor",
          disk,
          metadata,
          allowUntested: true,
          launcher: new Launcher("l-p1"),
        }),
      /antidote-images:movingTag: expected a Docker tag/,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const publications = resources.filter((r) => r.type.startsWith("docker:"));
    assert.deepStrictEqual(publications, [], "no tag or push registered");
  });

  it("refuses a repository longer than Docker takes, with the registry, before its tags register", async () => {
    const resources = await useMocks({ "antidote-images:registry": "registry.example.com/labs" });
    const file = path.join(tempDir("publishing-unit"), "disk.txt");
    fs.writeFileSync(file, "disk");
    const disk = new Template("disk-p2", { template: file, image: "debian-base" });
    const repository = "x".repeat(240);
    assert.throws(
      () =>
        new ContainerImage("vendor-container", {
          image: "vendor",
          repository,
          disk,
          metadata,
          allowUntested: true,
          launcher: new Launcher("l-p2"),
        }),
      new RegExp(`repository '${repository}': expected .* at most 255 characters with the registry`),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepStrictEqual(
      resources.filter((r) => r.type.startsWith("docker:")),
      [],
    );
  });
});
