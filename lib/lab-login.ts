/**
 * The login every lab image has unless its metadata says otherwise: learners type it, the boot test and the
 * container's health check use it. A well-known lab default, not a secret.
 */
export const LAB_LOGIN = { username: "antidote", password: "antidotepassword" } as const;
