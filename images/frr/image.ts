// FRRouting from Debian's package, with bgpd and ospfd enabled and vtysh usable by the login user.
import { LabImage } from "../../lib";
import { image as debianBase } from "../debian-base/image";

export const image = new LabImage("frr", {
  dir: __dirname,
  base: debianBase,
  packages: ["frr", "frr-pythontools"],
  groups: ["frr", "frrvty"],
});
