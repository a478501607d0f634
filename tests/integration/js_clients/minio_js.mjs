// MinIO's JavaScript SDK (the `minio` npm package) against rs3gw: its own signer, its own multipart
// logic (ListMultipartUploads to resume, BlockStream2 parts, Content-MD5 per part), its XML parsers.

import assert from "node:assert/strict";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { cfg, load, runChecks, hex, pattern, collect } from "./common.mjs";

const Minio = load("minio");

const BUCKET = cfg.bucket;
const endpoint = new URL(cfg.endpoint);
const PART = 5 * 1024 * 1024; // the smallest part size minio-js allows (its default is 64 MiB)

const mc = new Minio.Client({
  endPoint: endpoint.hostname,
  port: Number(endpoint.port),
  useSSL: endpoint.protocol === "https:",
  accessKey: cfg.accessKey,
  secretKey: cfg.secretKey,
  region: "us-east-1",
  pathStyle: true,
  partSize: PART,
  ...(cfg.caFile ? { transportAgent: new https.Agent({ ca: fs.readFileSync(cfg.caFile), keepAlive: true }) } : {}),
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rs3gw-minio-js-"));

async function read(key) {
  return collect(await mc.getObject(BUCKET, key));
}

async function listV2(prefix, recursive = true, startAfter = "") {
  const out = [];
  for await (const item of mc.listObjectsV2(BUCKET, prefix, recursive, startAfter)) out.push(item);
  return out;
}

async function rejects(fn) {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.fail("the request succeeded; an error was expected");
}

const checks = {
  async make_bucket_exists_remove() {
    const name = `mjs-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}`;
    await mc.makeBucket(name, "us-east-1");
    assert.equal(await mc.bucketExists(name), true);
    const buckets = await mc.listBuckets();
    assert.ok(buckets.some((b) => b.name === name && b.creationDate instanceof Date), "new bucket not listed");
    const again = await rejects(() => mc.makeBucket(name, "us-east-1"));
    assert.equal(again.code, "BucketAlreadyOwnedByYou");
    await mc.removeBucket(name);
    assert.equal(await mc.bucketExists(name), false);
  },

  async put_buffer_and_string() {
    const data = pattern(123_457, 3);
    const res = await mc.putObject(BUCKET, "buf/bin", data, data.length, { "Content-Type": "application/x-bin" });
    assert.equal(res.etag, hex("md5", data));
    assert.ok((await read("buf/bin")).equals(data), "GET body differs from the Buffer PUT");
    const text = "minio-js string \u00e9\u6f22\n";
    const r2 = await mc.putObject(BUCKET, "buf/text.txt", text);
    assert.equal(r2.etag, hex("md5", Buffer.from(text)));
    assert.equal((await read("buf/text.txt")).toString(), text);
  },

  async put_stream_known_and_unknown_size() {
    const data = pattern(300_001, 5);
    const known = await mc.putObject(BUCKET, "stream/known", Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), data.length);
    assert.equal(known.etag, hex("md5", data), "a stream under partSize is one PutObject");
    assert.ok((await read("stream/known")).equals(data));
    // No size: minio-js assumes the 5 TiB maximum and streams it as a multipart upload (one part here).
    const unknown = await mc.putObject(BUCKET, "stream/unknown", Readable.from([data.subarray(0, 7), data.subarray(7)]));
    assert.match(unknown.etag, /^[0-9a-f]{32}-1$/);
    assert.ok((await read("stream/unknown")).equals(data));
    const st = await mc.statObject(BUCKET, "stream/unknown");
    assert.equal(st.size, data.length);
  },

  async get_partial_object() {
    await mc.putObject(BUCKET, "range/digits", "0123456789");
    assert.equal((await collect(await mc.getPartialObject(BUCKET, "range/digits", 3, 4))).toString(), "3456");
    assert.equal((await collect(await mc.getPartialObject(BUCKET, "range/digits", 7))).toString(), "789");
  },

  async stat_object_metadata() {
    const body = "stat me";
    await mc.putObject(BUCKET, "meta/obj", body, body.length, {
      "Content-Type": "text/x-minio",
      "X-Amz-Meta-Color": "green",
      project: "7",
    });
    const st = await mc.statObject(BUCKET, "meta/obj");
    assert.equal(st.size, body.length);
    assert.equal(st.etag, hex("md5", Buffer.from(body)));
    assert.ok(st.lastModified instanceof Date && Math.abs(Date.now() - st.lastModified) < 600_000);
    assert.equal(st.metaData["content-type"], "text/x-minio");
    assert.equal(st.metaData.color, "green");
    assert.equal(st.metaData.project, "7");
    const miss = await rejects(() => mc.statObject(BUCKET, "meta/missing"));
    assert.equal(miss.code, "NotFound");
    const noKey = await rejects(() => mc.getObject(BUCKET, "meta/missing"));
    assert.equal(noKey.code, "NoSuchKey");
    const noBucket = await rejects(() => mc.getObject(`ghost-${Date.now()}`, "k"));
    assert.equal(noBucket.code, "NoSuchBucket");
  },

  async list_objects_v2_stream() {
    const keys = ["ls/a/1", "ls/a/2", "ls/a/b/3", "ls/c", "ls/d \u00e9+x"];
    for (const k of keys) await mc.putObject(BUCKET, k, k);
    const all = await listV2("ls/");
    assert.deepEqual(all.map((o) => o.name), [...keys].sort());
    for (const o of all) {
      assert.equal(o.size, Buffer.byteLength(o.name));
      assert.equal(o.etag, hex("md5", Buffer.from(o.name)));
      assert.ok(o.lastModified instanceof Date);
    }
    const top = await listV2("ls/", false);
    assert.deepEqual(top.filter((o) => o.prefix).map((o) => o.prefix), ["ls/a/"]);
    assert.deepEqual(top.filter((o) => o.name).map((o) => o.name), ["ls/c", "ls/d \u00e9+x"]);
    const after = await listV2("ls/", true, "ls/a/b/3");
    assert.deepEqual(after.map((o) => o.name), ["ls/c", "ls/d \u00e9+x"]);
    // listObjects (v1) paginates by marker under the hood as well
    const v1 = [];
    for await (const o of mc.listObjects(BUCKET, "ls/a/", true)) v1.push(o.name);
    assert.deepEqual(v1, ["ls/a/1", "ls/a/2", "ls/a/b/3"]);
  },

  async fput_object_multipart() {
    const size = 12 * 1024 * 1024 + 4321;
    const data = pattern(size, 9);
    const src = path.join(tmp, "big.bin");
    fs.writeFileSync(src, data);
    const res = await mc.fPutObject(BUCKET, "mpu/big.bin", src, { "X-Amz-Meta-Kind": "big" });
    assert.match(res.etag, /^[0-9a-f]{32}-3$/, "12 MiB with partSize 5 MiB is three parts");
    const st = await mc.statObject(BUCKET, "mpu/big.bin");
    assert.equal(st.size, size);
    assert.equal(st.metaData.kind, "big");
    assert.equal(st.metaData["content-type"], "application/octet-stream");
    const dst = path.join(tmp, "big.out");
    await mc.fGetObject(BUCKET, "mpu/big.bin", dst);
    assert.equal(hex("sha256", fs.readFileSync(dst)), hex("sha256", data));
    const span = await collect(await mc.getPartialObject(BUCKET, "mpu/big.bin", PART - 3, 6));
    assert.ok(span.equals(data.subarray(PART - 3, PART + 3)));
    // nothing is left in progress after the upload completed
    const pending = [];
    for await (const u of mc.listIncompleteUploads(BUCKET, "mpu/", true)) pending.push(u);
    assert.deepEqual(pending, []);
  },

  async presigned_get_and_put() {
    const key = "presigned/p q+\u00e9.txt";
    await mc.putObject(BUCKET, key, "presigned by minio-js");
    const url = await mc.presignedGetObject(BUCKET, key, 300);
    const get = await fetch(url);
    assert.equal(get.status, 200);
    assert.equal(await get.text(), "presigned by minio-js");
    const withHeaders = await mc.presignedGetObject(BUCKET, key, 300, { "response-content-type": "text/x-override" });
    const r2 = await fetch(withHeaders);
    assert.equal(r2.headers.get("content-type"), "text/x-override");
    const putUrl = await mc.presignedPutObject(BUCKET, "presigned/put", 300);
    const put = await fetch(putUrl, { method: "PUT", body: "put through minio-js presign" });
    assert.equal(put.status, 200, await put.text());
    assert.equal((await read("presigned/put")).toString(), "put through minio-js presign");
    const expired = new URL(url);
    expired.searchParams.set("X-Amz-Expires", "301");
    const bad = await fetch(expired);
    assert.equal(bad.status, 403, "a changed X-Amz-Expires must break the signature");
  },

  async remove_objects() {
    const keys = ["rm/a", "rm/b c", "rm/\u00fc", "rm/keep"];
    for (const k of keys) await mc.putObject(BUCKET, k, "x");
    const errors = await mc.removeObjects(BUCKET, [...keys.slice(0, 3), "rm/never-existed"]);
    assert.deepEqual(errors, []);
    assert.deepEqual((await listV2("rm/")).map((o) => o.name), ["rm/keep"]);
    await mc.removeObject(BUCKET, "rm/keep");
    assert.deepEqual(await listV2("rm/"), []);
  },

  async copy_object() {
    const data = pattern(50_000, 15);
    await mc.putObject(BUCKET, "copy/src \u00e9", data, data.length, { "X-Amz-Meta-Origin": "src" });
    const src = new Minio.CopySourceOptions({ Bucket: BUCKET, Object: "copy/src \u00e9" });
    const dst = new Minio.CopyDestinationOptions({ Bucket: BUCKET, Object: "copy/dst" });
    const res = await mc.copyObject(src, dst);
    assert.equal(res.Bucket, BUCKET);
    assert.equal(res.Key, "copy/dst");
    // minio-js takes Etag from an ETag response header, which MinIO sends and S3 does not (S3 puts
    // it only in the CopyObjectResult body); LastModified comes from that body.
    assert.ok(["", hex("md5", data)].includes(res.Etag), `Etag ${res.Etag}`);
    assert.ok(res.LastModified instanceof Date && Math.abs(Date.now() - res.LastModified) < 600_000);
    assert.ok((await read("copy/dst")).equals(data));
    assert.equal((await mc.statObject(BUCKET, "copy/dst")).metaData.origin, "src");
    const replaced = new Minio.CopyDestinationOptions({
      Bucket: BUCKET,
      Object: "copy/dst-replaced",
      MetadataDirective: "REPLACE",
      UserMetadata: { origin: "replaced" },
    });
    await mc.copyObject(src, replaced);
    const st = await mc.statObject(BUCKET, "copy/dst-replaced");
    assert.equal(st.metaData.origin, "replaced");
    assert.equal(st.size, data.length);
    // the legacy four-argument form (CopyObjectV1) with a conditional that fails
    const conds = new Minio.CopyConditions();
    conds.setMatchETag("0123456789abcdef0123456789abcdef");
    const e = await rejects(() => mc.copyObject(BUCKET, "copy/never", `/${BUCKET}/copy/dst`, conds));
    assert.equal(e.code, "PreconditionFailed");
  },
};

try {
  await runChecks(checks);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
