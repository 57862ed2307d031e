import * as assert from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT } from "../helpers";

/**
 * The launcher's reader of the guest's control line (lib/scripts/launcher/launch.sh, `read_control_line`), run as the
 * launcher defines it, on a FIFO. A guest under load sends a line in pieces; a read whose time runs out between them
 * must not lose the first piece (a restored VM's "resumed" was missed that way with four VMs on two cores, and its
 * links never came up).
 */
describe("launcher: the control line", function () {
  this.timeout(20_000);
  const launcher = fs.readFileSync(path.join(PROJECT_ROOT, "lib/scripts/launcher/launch.sh"), "utf8");
  const definition = /^control_line=.*\nread_control_line\(\) \{\n(?:.*\n)*?\}\n/m.exec(launcher);

  /** Runs `script` after the launcher's definition, with fd `control_out` reading what `writer` (a shell) writes. */
  function withControlLine(writer: string, script: string): string {
    assert.ok(definition, "read_control_line() not found in launch.sh");
    return execFileSync(
      "bash",
      ["-c", `set -euo pipefail\n${definition[0]}\nexec {control_out}< <(${writer})\n${script}`],
      { encoding: "utf8" },
    );
  }

  it("keeps the part of a line that came before a read ran out of time", () => {
    const out = withControlLine(
      `printf 'antidote-resume: res'; sleep 1.5; printf 'umed\\r\\n'`,
      `for attempt in 1 2 3; do
         if read_control_line 1; then echo "attempt $attempt: [$control_line]"; exit 0; fi
         echo "attempt $attempt: timed out"
       done`,
    );
    assert.strictEqual(out, "attempt 1: timed out\nattempt 2: [antidote-resume: resumed]\n");
  });

  it("reads line after line, and says when none came", () => {
    const out = withControlLine(
      `printf 'antidote-resume: ready\\nantidote-resume: resumed\\n'`,
      `read_control_line 1; echo "[$control_line]"; read_control_line 1; echo "[$control_line]"
       read_control_line 1 || echo "none: [$control_line]"`,
    );
    assert.strictEqual(out, "[antidote-resume: ready]\n[antidote-resume: resumed]\nnone: []\n");
  });
});
