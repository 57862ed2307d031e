import * as fs from "fs";
import * as path from "path";
import { requireProgram } from "../../exec";
import { StepLog } from "../log";
import { ImageTree, TreeCommandError } from "./tree";

/** Input roles of a playbook's folder start with this; the playbook's own role is `playbook/<file name>`. */
export const PLAYBOOK_ROLE_PREFIX = "playbook/";

/** Files that mark an image's own folder, which cannot double as a playbook's: all of it would be key input. */
const IMAGE_FOLDER_FILES = ["metadata.yaml", "image.ts"];

/**
 * The input files of an Ansible playbook, role → path: every file of the playbook's folder, at any depth (roles,
 * group_vars, vars files, templates, ansible.cfg), so that a change to any of them changes the key, exactly as a
 * changed install.sh does. Returns an error message instead when the folder cannot be the playbook's own.
 */
export function playbookFiles(playbook: string): Record<string, string> | string {
  const folder = path.dirname(path.resolve(playbook));
  const marker = IMAGE_FOLDER_FILES.find((name) => fs.existsSync(path.join(folder, name)));
  if (marker) {
    return `a playbook in a folder of its own (every file of its folder is its input), not next to ${marker}`;
  }
  const files: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of fs
      .readdirSync(dir, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const file = path.join(dir, entry.name);
      const stat = fs.statSync(file, { throwIfNoEntry: false });
      if (stat?.isDirectory()) walk(file);
      else if (stat?.isFile()) files[PLAYBOOK_ROLE_PREFIX + path.relative(folder, file)] = file;
    }
  };
  walk(folder);
  return files;
}

/** The role of the playbook file itself among {@link playbookFiles}. */
export function playbookRole(playbook: string): string {
  return PLAYBOOK_ROLE_PREFIX + path.basename(playbook);
}

/** Fails early, before minutes of bootstrap, when this build host cannot run a playbook. */
export function requireAnsible(env: NodeJS.ProcessEnv = process.env): void {
  requireProgram("ansible-playbook", "ansible", "the image has a playbook", env);
}

/** Copies the playbook's folder, from its input roles, to `dir`; returns the staged playbook's path. */
export function stagePlaybook(files: Record<string, string>, role: string, dir: string): string {
  for (const [inputRole, file] of Object.entries(files)) {
    if (!inputRole.startsWith(PLAYBOOK_ROLE_PREFIX)) continue;
    const target = path.join(dir, inputRole.slice(PLAYBOOK_ROLE_PREFIX.length));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(file, target);
  }
  return path.join(dir, role.slice(PLAYBOOK_ROLE_PREFIX.length));
}

/**
 * Runs `ansible-playbook` on the host against the tree through the `community.general.chroot` connection, the tree
 * mounted as for every command run in it (so what the playbook starts ends with it). The inventory has one host,
 * named after the image; Ansible's own files stay in `work` (and its temporary files in the tree's /run, a tmpfs).
 * A failure names the task that failed and Ansible's message.
 */
export async function runPlaybook(
  tree: ImageTree,
  log: StepLog,
  options: { image: string; playbook: string; work: string },
): Promise<void> {
  const name = path.basename(options.playbook);
  const home = path.join(options.work, "ansible");
  fs.mkdirSync(path.join(home, "tmp"), { recursive: true });
  const inventory = path.join(home, "inventory");
  fs.writeFileSync(
    inventory,
    `${options.image} ansible_connection=community.general.chroot ansible_host=${tree.root}\n`,
  );
  // Only the playbook folder's ansible.cfg (an input), never one in the build's working directory.
  const folderConfig = path.join(path.dirname(options.playbook), "ansible.cfg");
  const config = fs.existsSync(folderConfig) ? folderConfig : path.join(home, "ansible.cfg");
  if (config !== folderConfig) fs.writeFileSync(config, "");
  const logStart = fs.statSync(log.path).size;
  try {
    await tree.runOnHost(
      `playbook ${name}`,
      ["ansible-playbook", "--inventory", inventory, options.playbook],
      {
        ANSIBLE_CONFIG: config,
        ANSIBLE_HOME: home,
        ANSIBLE_LOCAL_TEMP: path.join(home, "tmp"),
        ANSIBLE_REMOTE_TMP: "/run/ansible",
        ANSIBLE_PYTHON_INTERPRETER: "auto_silent",
        ANSIBLE_RETRY_FILES_ENABLED: "false",
        ANSIBLE_NOCOLOR: "1",
      },
    );
  } catch (err) {
    if (!(err instanceof TreeCommandError)) throw err;
    const cause = playbookFailure(fs.readFileSync(log.path).subarray(logStart).toString("utf8"));
    throw cause === undefined ? err : new TreeCommandError(`playbook ${name}: ${cause}`);
  }
}

/**
 * What ansible-playbook's output says failed: `task "<name>" failed: <message>` for the first failed task (the
 * TASK line before the first `fatal:`/`failed:` line), else its `ERROR!` line (a syntax error, a missing plugin).
 */
export function playbookFailure(output: string): string | undefined {
  const lines = output.split("\n");
  let task: string | undefined;
  for (const line of lines) {
    const header = /^TASK \[(.*)\] \**$/.exec(line);
    if (header) task = header[1];
    const failed = /^(?:fatal|failed): \[[^\]]*\](?: \(item=(.*?)\))?: (?:FAILED! )?=> (.*)$/.exec(line);
    if (failed && task !== undefined) {
      const item = failed[1] === undefined ? "" : ` (item ${failed[1]})`;
      return `task "${task}"${item} failed: ${resultMessage(failed[2])}`;
    }
  }
  return lines.find((line) => line.startsWith("ERROR! "))?.slice("ERROR! ".length);
}

/** A task result's message: its `msg` and the first line of its stderr, else the result as Ansible printed it. */
function resultMessage(json: string): string {
  let result: { msg?: unknown; stderr?: unknown };
  try {
    result = JSON.parse(json) as typeof result;
  } catch {
    return json.trim();
  }
  const firstLine = (v: unknown) => (typeof v === "string" ? v.trim().split("\n")[0] : "");
  const said = [firstLine(result.msg), firstLine(result.stderr)].filter((t) => t !== "");
  return said.length > 0 ? said.join(": ") : json.trim();
}
