// A small S3 + rs3gw admin client for the console: every request is SigV4-signed in the page.
import { presign, sha256Base64, sha256Hex, signRequest, UNSIGNED } from "./sigv4.js";

export class S3Error extends Error {
  constructor(status, code, message) {
    super(message ? `${code}: ${message}` : code);
    this.status = status;
    this.code = code;
  }
}

function text(node, tag) {
  const el = node.getElementsByTagName(tag)[0];
  return el ? el.textContent : "";
}

async function errorFrom(resp) {
  const body = await resp.text();
  if (body.startsWith("<")) {
    const doc = new DOMParser().parseFromString(body, "application/xml");
    const code = text(doc, "Code");
    if (code) return new S3Error(resp.status, code, text(doc, "Message"));
  }
  return new S3Error(resp.status, `HTTP ${resp.status}`, body.slice(0, 200));
}

export function objectPath(bucket, key = "") {
  return key ? `/${bucket}/${key}` : `/${bucket}`;
}

export class S3Client {
  constructor({ accessKey, secretKey, region, origin = location.origin }) {
    Object.assign(this, { accessKey, secretKey, region, origin, host: new URL(origin).host });
  }

  async sign(method, path, query, headers, payloadHash) {
    const { accessKey, secretKey, region, host } = this;
    const s = await signRequest({ method, host, path, query, headers, payloadHash, region, accessKey, secretKey });
    return { url: this.origin + s.path + (s.queryString ? "?" + s.queryString : ""), headers: s.headers };
  }

  /** A signed fetch; body is a string (hashed) or null. Throws S3Error on a non-2xx answer. */
  async request(method, path, { query = [], body = null, headers = {}, checksum = false } = {}) {
    const h = { ...headers };
    if (checksum) h["x-amz-checksum-sha256"] = await sha256Base64(body ?? "");
    const { url, headers: signed } = await this.sign(method, path, query, h, await sha256Hex(body ?? ""));
    const resp = await fetch(url, { method, headers: signed, body, cache: "no-store", credentials: "omit" });
    if (!resp.ok) throw await errorFrom(resp);
    return resp;
  }

  async xml(method, path, opts) {
    const body = await (await this.request(method, path, opts)).text();
    return new DOMParser().parseFromString(body, "application/xml");
  }

  async listBuckets() {
    const doc = await this.xml("GET", "/");
    return Array.from(doc.getElementsByTagName("Bucket"), (b) => ({ name: text(b, "Name"), created: text(b, "CreationDate") }));
  }

  async listObjects(bucket, prefix, token = "") {
    const query = [["list-type", "2"], ["delimiter", "/"], ["prefix", prefix], ["max-keys", "1000"]];
    if (token) query.push(["continuation-token", token]);
    const doc = await this.xml("GET", objectPath(bucket), { query });
    return {
      prefixes: Array.from(doc.getElementsByTagName("CommonPrefixes"), (p) => text(p, "Prefix")),
      objects: Array.from(doc.getElementsByTagName("Contents"), (c) => ({
        key: text(c, "Key"), size: Number(text(c, "Size")), modified: text(c, "LastModified"),
      })),
      next: text(doc, "NextContinuationToken"),
    };
  }

  /** PUT with an unsigned payload over XHR, for upload progress events and no hashing in JS. */
  async upload(bucket, key, file, onProgress) {
    const headers = { "content-type": file.type || "application/octet-stream" };
    const { url, headers: signed } = await this.sign("PUT", objectPath(bucket, key), [], headers, UNSIGNED);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", url);
      for (const [name, value] of Object.entries(signed)) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded, e.total));
      xhr.upload.addEventListener("load", () => onProgress(file.size, file.size));
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(true);
        else errorFrom(new Response(xhr.responseText, { status: xhr.status })).then(reject);
      });
      xhr.addEventListener("error", () => reject(new S3Error(0, "NetworkError", "upload failed")));
      xhr.send(file);
    });
  }

  async download(bucket, key) {
    return (await this.request("GET", objectPath(bucket, key))).blob();
  }

  async presignedUrl(bucket, key, expires) {
    const { accessKey, secretKey, region, host } = this;
    const rel = await presign({ host, path: objectPath(bucket, key), region, accessKey, secretKey, expires });
    return this.origin + rel;
  }

  /** JSON from the rs3gw admin API; text for non-JSON answers (the Prometheus page). */
  async admin(method, route, { query = [], body = null } = {}) {
    const resp = await this.request(method, `/_rs3gw/admin/${route}`, { query, body });
    if (resp.status === 204) return null;
    const type = resp.headers.get("content-type") || "";
    return type.includes("json") ? resp.json() : resp.text();
  }
}
