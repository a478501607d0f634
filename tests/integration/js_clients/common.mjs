// What the JavaScript client scripts share: their configuration (from the pytest driver), a check
// runner that reports one JSON line per check, and checksum helpers computed here in plain JS so a
// checksum the gateway returns is compared with an independent value, not with the SDK's own one.

import { createRequire } from "node:module";
import crypto from "node:crypto";
import path from "node:path";

/** RS3GW_JS_CONFIG: endpoint, keys, bucket, checks to run, where the npm packages were installed. */
export const cfg = JSON.parse(process.env.RS3GW_JS_CONFIG);

/** require() that resolves packages from the cached npm install, not from the repository. */
export const load = createRequire(path.join(cfg.modules, "package.json"));

/** Marker in front of each result line, so SDK warnings on stdout cannot be mistaken for results. */
const MARK = "@@rs3gw-js-check ";

/** Run the configured subset of CHECKS (name -> async fn) one after another; report each. */
export async function runChecks(checks) {
  if (cfg.listOnly) {
    process.stdout.write(MARK + JSON.stringify({ names: Object.keys(checks) }) + "\n");
    return;
  }
  const wanted = cfg.checks && cfg.checks.length ? cfg.checks : Object.keys(checks);
  for (const name of wanted) {
    const fn = checks[name];
    const started = Date.now();
    let result;
    if (!fn) {
      result = { name, ok: false, error: `no such check: ${name}` };
    } else {
      try {
        await fn();
        result = { name, ok: true };
      } catch (e) {
        const detail = e && e.$metadata ? ` $metadata=${JSON.stringify(e.$metadata)} name=${e.name}` : "";
        result = { name, ok: false, error: `${e && e.stack ? e.stack : e}${detail}` };
      }
    }
    result.ms = Date.now() - started;
    process.stdout.write(MARK + JSON.stringify(result) + "\n");
  }
}

/** A table-driven reflected CRC-32 (zlib polynomial or Castagnoli's). */
function crc32Table(poly) {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
}

const CRC32 = crc32Table(0xedb88320);
const CRC32C = crc32Table(0x82f63b78);

function crc32With(table, buf) {
  let c = 0xffffffff;
  for (const b of buf) c = table[(c ^ b) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

/** base64 of the big-endian CRC-32 (what x-amz-checksum-crc32 carries). */
export const crc32 = (buf) => crc32With(CRC32, Buffer.from(buf));
/** base64 of the big-endian CRC-32C (x-amz-checksum-crc32c). */
export const crc32c = (buf) => crc32With(CRC32C, Buffer.from(buf));

/** base64 of the big-endian CRC-64/NVME (x-amz-checksum-crc64nvme); BigInt, so small inputs only. */
export function crc64nvme(input) {
  const poly = 0x9a6c9329ac4bc9b5n;
  const mask = 0xffffffffffffffffn;
  let c = mask;
  for (const b of Buffer.from(input)) {
    c ^= BigInt(b);
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ poly : c >> 1n;
  }
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE((c ^ mask) & mask);
  return out.toString("base64");
}

/** base64 digest (x-amz-checksum-sha256 / -sha1). */
export const digest64 = (alg, buf) => crypto.createHash(alg).update(buf).digest("base64");
/** hex digest (ETags, comparing large bodies). */
export const hex = (alg, buf) => crypto.createHash(alg).update(buf).digest("hex");

/** Deterministic pseudo-random bytes, so a failing byte offset is reproducible. */
export function pattern(size, seed = 1) {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Collect a Node stream (or async iterable) into one Buffer. */
export async function collect(stream) {
  const parts = [];
  for await (const c of stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}
