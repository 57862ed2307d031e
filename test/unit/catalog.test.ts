import * as assert from "assert";
import * as path from "path";
import { buildCatalog, renderMarkdown } from "../../lib/catalog/catalog";
import { loadMetadata } from "../../lib/metadata/metadata";
import { curriculumRepo, storeWithBuilds } from "../catalog-fixture";
import { PROJECT_ROOT } from "../helpers";

describe("catalog", () => {
  it("lists an outside repository's images exactly as their metadata says, with base and derived images", async () => {
    const repo = curriculumRepo();
    const catalog = await buildCatalog(repo);
    assert.deepStrictEqual(
      catalog.images.map((i) => i.name),
      ["base", "router", "tools"],
    );
    for (const image of catalog.images) {
      const { folder, derived, builds, published, kernel, ...metadata } = image;
      assert.deepStrictEqual(metadata, loadMetadata(path.join(repo, folder)));
      assert.deepStrictEqual([builds, published, kernel], [[], [], undefined]);
      assert.deepStrictEqual(derived, image.name === "base" ? ["router", "tools"] : []);
    }
    assert.strictEqual(catalog.problems.length, 1);
    assert.match(catalog.problems[0], /broken\/metadata.yaml: ports\[0\]\.port: expected at least 1, got 0/);
  });

  it("adds from the store each image's latest builds, its kernel and where it was published", async () => {
    const { store, kernelKey } = await storeWithBuilds();
    const catalog = await buildCatalog(curriculumRepo(), store);
    assert.deepStrictEqual(catalog.kernels, [
      {
        name: "kernel-6.1",
        key: kernelKey,
        release: "6.1.192-antidote",
        usedBy: ["base", "router", "tools"],
      },
    ]);
    const router = catalog.images.find((i) => i.name === "router");
    assert.strictEqual(router?.kernel, "kernel-6.1");
    assert.deepStrictEqual(
      router?.builds.map((b) => b.name),
      ["router-container", "router-disk"],
    );
    assert.deepStrictEqual(router?.published, ["127.0.0.1:5000/router@sha256:abc"]);
    const markdown = renderMarkdown(catalog);
    assert.match(
      markdown,
      /\| \[router\]\(#router\) \| A router for BGP lessons\. \| base \| ssh, vtysh, netconf \| 22\/tcp ssh, 830\/tcp netconf \| 2 \|/,
    );
    assert.match(markdown, /- kernel: kernel-6.1/);
  });

  it("names a base that does not exist and images that build on each other in a cycle", async () => {
    const repo = curriculumRepo();
    const fs = await import("fs");
    fs.writeFileSync(
      path.join(repo, "images", "tools", "metadata.yaml"),
      "name: tools\ndescription: x\nbase: toolbase\n",
    );
    fs.writeFileSync(
      path.join(repo, "images", "base", "metadata.yaml"),
      "name: base\ndescription: x\nbase: router\n",
    );
    const { problems } = await buildCatalog(repo);
    assert.ok(
      problems.some((p) => /tools\/metadata.yaml: base: no image named 'toolbase'/.test(p)),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /build on each other in a cycle/.test(p)),
      problems.join("\n"),
    );
  });

  it("lists this project's own images", async () => {
    const catalog = await buildCatalog(PROJECT_ROOT);
    assert.ok(catalog.images.some((i) => i.name === "hello"));
    assert.deepStrictEqual(catalog.problems, []);
  });
});
