import * as assert from "assert";
import { stepKeys } from "../../lib/cli/gc";
import { sha256 } from "../../lib/keys";
import { RunReport, StepRecord } from "../../lib/runner/local-runner";

function record(name: string, kind: string, key: string, status: StepRecord["status"]): StepRecord {
  return { name, image: "tiny", kind, key, status };
}

describe("gc: what a plan keeps", () => {
  it("keeps the keys of the build steps, whatever their status, and none of the publications or plain commands", () => {
    const [disk, container] = [sha256("disk"), sha256("container")];
    const report: RunReport = {
      stack: "local",
      mode: "plan",
      steps: [
        record("tiny-disk", "disk-import", disk, "cached"),
        record("tiny-container", "container", container, "would-build"),
        record("tiny-container-tag-key", "docker tag", "docker tag:tiny-container-tag-key", "would-build"),
        record(
          "tiny-container-push-key",
          "docker push",
          "docker push:tiny-container-push-key",
          "would-build",
        ),
        record("notify", "command", "command:notify", "would-build"),
      ],
      unsupported: [],
      outputs: {},
      wallMs: 1,
    };
    assert.deepStrictEqual(stepKeys(report), [disk, container]);
  });
});
