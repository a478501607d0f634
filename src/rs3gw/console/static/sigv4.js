// AWS Signature Version 4 for S3 on WebCrypto. Pure functions, no DOM: the console imports it in
// the browser and tests/unit/test_console_sigv4.py imports it in Node to compare with botocore.

const enc = new TextEncoder();
const subtle = globalThis.crypto.subtle;

export const UNSIGNED = "UNSIGNED-PAYLOAD";
const ALGORITHM = "AWS4-HMAC-SHA256";
const UNRESERVED = /^[A-Za-z0-9\-_.~]$/;

/** RFC 3986 encoding as SigV4 defines it: UTF-8 bytes, uppercase hex, "/" kept only in paths. */
export function uriEncode(text, keepSlash = false) {
  let out = "";
  for (const byte of enc.encode(text)) {
    const ch = String.fromCharCode(byte);
    out += UNRESERVED.test(ch) || (keepSlash && ch === "/") ? ch : "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

function bytes(data) {
  return typeof data === "string" ? enc.encode(data) : data;
}

export async function sha256Hex(data) {
  return hex(await subtle.digest("SHA-256", bytes(data)));
}

export async function sha256Base64(data) {
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes(data)));
  return btoa(String.fromCharCode(...digest));
}

async function hmac(key, message) {
  const k = await subtle.importKey("raw", bytes(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return subtle.sign("HMAC", k, enc.encode(message));
}

/** "20260102T030405Z" */
export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

export function canonicalQuery(pairs) {
  const encoded = pairs.map(([k, v]) => [uriEncode(k), uriEncode(v)]);
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return encoded.map(([k, v]) => `${k}=${v}`).join("&");
}

async function signature(secretKey, stamp, region, service, stringToSign) {
  let key = await hmac("AWS4" + secretKey, stamp.slice(0, 8));
  for (const part of [region, service, "aws4_request"]) key = await hmac(key, part);
  return hex(await hmac(key, stringToSign));
}

async function stringToSign(stamp, scope, canonical) {
  return [ALGORITHM, stamp, scope, await sha256Hex(canonical)].join("\n");
}

/**
 * Sign a request in the Authorization header. `path` is the decoded path ("/bucket/key"), `query` a
 * list of [name, value] pairs, `headers` the headers the caller will send (all get signed).
 * Returns the encoded path and query string to put on the wire and the headers to send (no Host:
 * the browser sets it, and it is signed as `host`).
 */
export async function signRequest({
  method, host, path, query = [], headers = {}, payloadHash, region, accessKey, secretKey,
  service = "s3", date = new Date(),
}) {
  const stamp = amzDate(date);
  const out = { ...headers, "x-amz-date": stamp, "x-amz-content-sha256": payloadHash };
  const all = { host };
  for (const [name, value] of Object.entries(out)) all[name.toLowerCase()] = String(value).trim().replace(/\s+/g, " ");
  const names = Object.keys(all).sort();
  const encodedPath = uriEncode(path, true);
  const queryString = canonicalQuery(query);
  const canonical = [
    method, encodedPath, queryString, names.map((n) => `${n}:${all[n]}\n`).join(""), names.join(";"), payloadHash,
  ].join("\n");
  const scope = `${stamp.slice(0, 8)}/${region}/${service}/aws4_request`;
  const sig = await signature(secretKey, stamp, region, service, await stringToSign(stamp, scope, canonical));
  out.authorization = `${ALGORITHM} Credential=${accessKey}/${scope}, SignedHeaders=${names.join(";")}, Signature=${sig}`;
  return { path: encodedPath, queryString, headers: out };
}

/** A presigned (query-string) URL path+query valid for `expires` seconds; only `host` is signed. */
export async function presign({
  method = "GET", host, path, query = [], region, accessKey, secretKey, expires = 3600,
  service = "s3", date = new Date(),
}) {
  const stamp = amzDate(date);
  const scope = `${stamp.slice(0, 8)}/${region}/${service}/aws4_request`;
  const pairs = [
    ...query,
    ["X-Amz-Algorithm", ALGORITHM],
    ["X-Amz-Credential", `${accessKey}/${scope}`],
    ["X-Amz-Date", stamp],
    ["X-Amz-Expires", String(expires)],
    ["X-Amz-SignedHeaders", "host"],
  ];
  const encodedPath = uriEncode(path, true);
  const queryString = canonicalQuery(pairs);
  const canonical = [method, encodedPath, queryString, `host:${host}\n`, "host", UNSIGNED].join("\n");
  const sig = await signature(secretKey, stamp, region, service, await stringToSign(stamp, scope, canonical));
  return `${encodedPath}?${queryString}&X-Amz-Signature=${sig}`;
}
