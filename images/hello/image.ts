// The smallest image: two cheap steps that prove the plumbing (keys, store, runner) end to end.
import * as path from "path";
import { Archive, Template } from "../../lib";

export const greeting = new Template("hello-greeting", {
  template: path.join(__dirname, "greeting.txt"),
  vars: { image: "hello", platform: "antidote" },
  image: "hello",
});

export const bundle = new Archive("hello-bundle", { members: { greeting }, image: "hello" });
