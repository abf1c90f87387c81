// What the filter's completion offers where the cursor is, and how values
// are written back: plain functions, tested without a browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { context, valueLiteral } from "../static/filterinput.js";

test("field names where a condition starts", () => {
  assert.deepEqual(context("{ "), { kind: "field", start: 2, prefix: "", braced: true });
  assert.deepEqual(context("{ span.reg"), { kind: "field", start: 2, prefix: "span.reg", braced: true });
  assert.deepEqual(context('{ span.a = "x" && res'), { kind: "field", start: 18, prefix: "res", braced: true });
  assert.deepEqual(context("{ (kind = server || !(dur"), { kind: "field", start: 22, prefix: "dur", braced: true });
  assert.deepEqual(context(""), { kind: "field", start: 0, prefix: "", braced: false });
});

test("operators after a field", () => {
  assert.deepEqual(context("{ span.region "), { kind: "op", field: "span.region", start: 14 });
  assert.deepEqual(context("{ duration  "), { kind: "op", field: "duration", start: 12 });
});

test("values after an operator, quoted or not", () => {
  assert.deepEqual(context("{ span.region = "), { kind: "value", field: "span.region", op: "=", start: 16, prefix: "", quoted: false });
  assert.deepEqual(context('{ span.region="eu-'), { kind: "value", field: "span.region", op: "=", start: 14, prefix: "eu-", quoted: true });
  assert.deepEqual(context("{ span.code != 40"), { kind: "value", field: "span.code", op: "!=", start: 15, prefix: "40", quoted: false });
  assert.deepEqual(context("{ status = err"), { kind: "value", field: "status", op: "=", start: 11, prefix: "err", quoted: false });
  assert.deepEqual(context('{ a.b = "x" && resource.host.name =~ "'), { kind: "value", field: "resource.host.name", op: "=~", start: 37, prefix: "", quoted: true });
});

test("nothing to offer after a complete condition", () => {
  assert.equal(context('{ span.region = "eu" '), null);
  assert.equal(context('{ span.region = "eu" }'), null);
  assert.equal(context("{ duration > 5ms "), null);
});

test("values are written as filters read them", () => {
  assert.equal(valueLiteral("eu-west-3", "span.region"), '"eu-west-3"');
  assert.equal(valueLiteral('say "hi"\n', "span.msg"), '"say \\"hi\\"\\n"');
  assert.equal(valueLiteral(200, "span.code"), "200");
  assert.equal(valueLiteral(true, "span.ok"), "true");
  assert.equal(valueLiteral(null, "span.x"), "nil");
  assert.equal(valueLiteral("error", "status"), "error");
  assert.equal(valueLiteral("server", "kind"), "server");
  assert.equal(valueLiteral("server", "span.kind"), '"server"');
});
