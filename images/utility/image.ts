// A tools box for lessons: Python network-automation libraries Debian packages, Ansible, and capture tools.
import { LabImage } from "../../lib";
import { image as debianBase } from "../debian-base/image";

export const image = new LabImage("utility", {
  dir: __dirname,
  base: debianBase,
  packages: [
    // automation
    "python3",
    "ansible-core",
    "python3-netmiko",
    "python3-ncclient",
    "python3-paramiko",
    "python3-textfsm",
    "python3-jinja2",
    "python3-yaml",
    "python3-requests",
    "git",
    "jq",
    // network tools
    "curl",
    "tcpdump",
    "libcap2-bin",
    "iputils-ping",
    "traceroute",
    "netcat-openbsd",
    "dnsutils",
    "iperf3",
  ],
  groups: ["pcap"],
  // Provisioned by an Ansible playbook rather than install.sh: the example of docs/authoring.md.
  playbook: "ansible/site.yml",
});
