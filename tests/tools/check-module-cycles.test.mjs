// The import-cycle check itself: it must find cycles written every way Rust
// allows (crate::, super::, a child module's own path), and ignore unit tests
// and comments, or CI's layering check would pass on anything.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const SCRIPT = new URL("../../scripts/check-module-cycles.mjs", import.meta.url).pathname;

function crateWith(files) {
  const dir = mkdtempSync(join(tmpdir(), "cycles-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, "src", path, ".."), { recursive: true });
    writeFileSync(join(dir, "src", path), text);
  }
  return dir;
}

function check(dir) {
  try {
    return { ok: true, out: execFileSync("node", [SCRIPT, dir], { encoding: "utf8" }) };
  } catch (e) {
    return { ok: false, out: e.stdout };
  }
}

test("two modules that use each other through crate:: are a cycle", () => {
  const { ok, out } = check(crateWith({
    "lib.rs": "mod a;\nmod b;\n",
    "a.rs": "use crate::b::B;\npub struct A;\n",
    "b.rs": "pub struct B;\nfn f() -> crate::a::A { todo!() }\n",
  }));
  assert.equal(ok, false);
  assert.match(out, /import cycle among 2 modules: a, b/);
});

test("a folder that re-exports a child which uses the folder back is a cycle", () => {
  const { ok, out } = check(crateWith({
    "lib.rs": "mod node;\n",
    "node/mod.rs": "mod chat;\npub use chat::Chat;\npub struct Machine;\n",
    "node/chat.rs": "use super::Machine;\npub struct Chat;\n",
  }));
  assert.equal(ok, false);
  assert.match(out, /node, node::chat/);
});

test("uses in unit tests and comments are not dependencies", () => {
  const { ok } = check(crateWith({
    "lib.rs": "mod a;\nmod b;\n",
    "a.rs": "use crate::b::B;\npub struct A;\n",
    "b.rs": "/// Unlike `crate::a::A`, …\npub struct B;\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
  }));
  assert.equal(ok, true);
});
