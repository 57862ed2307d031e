import { createHash } from "crypto";

/** The alphabet of crypt(3) hashes. */
const CRYPT64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** glibc's default and what `rounds=` may be omitted for. */
const DEFAULT_ROUNDS = 5000;

/**
 * sha512-crypt (`$6$`), as specified by Ulrich Drepper and implemented by glibc, libxcrypt and `openssl passwd -6`.
 * Implemented here so the hash can be computed synchronously while the Pulumi program runs, with no tool on the host.
 */
export function sha512Crypt(password: string, salt: string, rounds = DEFAULT_ROUNDS): string {
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt))
    throw new Error("sha512-crypt salt: 1 to 16 characters of [./0-9A-Za-z]");
  const p = Buffer.from(password, "utf8");
  const s = Buffer.from(salt, "ascii");
  const sha = (...parts: Buffer[]) => {
    const h = createHash("sha512");
    for (const part of parts) h.update(part);
    return h.digest();
  };

  const b = sha(p, s, p);
  const a = createHash("sha512").update(p).update(s);
  a.update(repeatTo(b, p.length));
  for (let n = p.length; n > 0; n >>= 1) a.update(n & 1 ? b : p);
  let c = a.digest();

  const pBytes = repeatTo(sha(...Array<Buffer>(p.length).fill(p)), p.length);
  const sBytes = repeatTo(sha(...Array<Buffer>(16 + c[0]).fill(s)), s.length);
  for (let i = 0; i < rounds; i++) {
    const h = createHash("sha512");
    h.update(i & 1 ? pBytes : c);
    if (i % 3) h.update(sBytes);
    if (i % 7) h.update(pBytes);
    h.update(i & 1 ? c : pBytes);
    c = h.digest();
  }

  let encoded = "";
  const put = (b2: number, b1: number, b0: number, chars: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let k = 0; k < chars; k++, w >>= 6) encoded += CRYPT64[w & 0x3f];
  };
  for (let i = 0; i < 21; i++) {
    const [x, y, z] = [c[i], c[i + 21], c[i + 42]];
    if (i % 3 === 0) put(x, y, z, 4);
    else if (i % 3 === 1) put(y, z, x, 4);
    else put(z, x, y, 4);
  }
  put(0, 0, c[63], 2);
  const roundsPart = rounds === DEFAULT_ROUNDS ? "" : `rounds=${rounds}$`;
  return `$6$${roundsPart}${salt}$${encoded}`;
}

function repeatTo(block: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += block.length) block.copy(out, i, 0, Math.min(block.length, length - i));
  return out;
}

/**
 * The password hash that goes into an image: sha512-crypt with a salt derived from the image and user names, so the
 * hash (and with it the step key) is the same on every run, while two images with the same password still get
 * different hashes. The plaintext never leaves the program.
 */
export function imagePasswordHash(password: string, image: string, user: string): string {
  const digest = createHash("sha256").update(`antidote-images/rootfs/${image}/${user}`).digest();
  const salt = [...digest.subarray(0, 16)].map((byte) => CRYPT64[byte & 0x3f]).join("");
  return sha512Crypt(password, salt);
}

/** A crypt(3) hash that sha512-crypt or yescrypt produced (what /etc/shadow accepts for a login). */
export function isCryptHash(value: string): boolean {
  return (
    /^\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/.test(value) ||
    /^\$y\$[./0-9A-Za-z$]+$/.test(value)
  );
}
