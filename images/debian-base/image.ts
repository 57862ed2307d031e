// The minimal base every other image builds on: Debian minbase with systemd, OpenSSH, sudo and the shared kernel.
import { LabImage } from "../../lib";

export const image = new LabImage("debian-base", { dir: __dirname });
