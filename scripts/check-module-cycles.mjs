#!/usr/bin/env node
// Lists import cycles between the modules of each crate in the workspace.
//
// A module is one file under a crate's src/ (`ledger.rs`, `node/chat.rs`; a
// folder's `mod.rs` is the folder's module). Module A depends on module B
// when A's code (not its unit tests) names a path inside B through `crate::`,
// `super::` or `self::`; a `mod b;` declaration is not a use. Cycles are the
// strongly connected components with more than one module. Exits 1 and prints each cycle when there is one, so that CI fails
// on a layering regression.
//
// Usage: node scripts/check-module-cycles.mjs [crate-dir ...]

import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const DEFAULT_CRATES = ["manifest", "widget", "worker", "worker/whisper", "worker/node"];

function rustFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return rustFiles(path);
    return name.endsWith(".rs") ? [path] : [];
  });
}

/** A file's module path: `src/node/chat.rs` → `node::chat`, `src/node/mod.rs` → `node`. */
function modulePath(src, file) {
  const parts = relative(src, file).replace(/\.rs$/, "").split("/");
  if (parts.at(-1) === "mod") parts.pop();
  return parts.join("::");
}

/**
 * The code that counts: comments go (a doc link is not a dependency), and so
 * do the unit tests at the bottom of a file (a test may use anything).
 */
function code(text) {
  const tests = text.search(/#\[cfg\(test\)\]\s*(pub(\(crate\))?\s+)?mod \w+\s*\{/);
  const body = tests < 0 ? text : text.slice(0, tests);
  return body.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

/** Every path a file names from its crate: `crate::a::b`, `super::c`, `use crate::{a, b::c}`. */
function namedPaths(text, self) {
  const parent = self.split("::").slice(0, -1);
  const found = [];
  const add = (root, rest) => {
    const path = rest.split("::").map((p) => p.trim()).filter((p) => /^\w+$/.test(p));
    if (root === "crate") found.push(path);
    else if (root === "super") found.push([...parent, ...path]);
    else if (root === "self") found.push([...self.split("::"), ...path]);
  };
  // Expands one level of braces: `crate::{a::{b, c}, d}` → a::b, a::c, d.
  const expand = (root, prefix, inner) => {
    let depth = 0;
    let item = "";
    const items = [];
    for (const ch of inner) {
      if (ch === "{") depth += 1;
      if (ch === "}") depth -= 1;
      if (ch === "," && depth === 0) {
        items.push(item);
        item = "";
      } else item += ch;
    }
    items.push(item);
    for (const raw of items) {
      const it = raw.trim();
      const brace = it.indexOf("{");
      if (brace >= 0) expand(root, `${prefix}${it.slice(0, brace)}`, it.slice(brace + 1, it.lastIndexOf("}")));
      else add(root, `${prefix}${it}`);
    }
  };
  // A path may also start at a child module this file declares (`mod x;`
  // then `use x::Y`): that is `self::x::Y`.
  const children = [...text.matchAll(/^\s*(?:pub(?:\([\w:]+\))?\s+)?mod (\w+);/gm)].map((m) => m[1]);
  const roots = ["crate", "super", "self", ...children].join("|");
  const pathPattern = new RegExp(`(?<![\\w:])(${roots})::((?:\\w+::)*)(\\{|\\w+)`, "g");
  for (const m of text.matchAll(pathPattern)) {
    let [, root, prefix, last] = m;
    if (children.includes(root)) {
      prefix = `${root}::${prefix}`;
      root = "self";
    }
    if (last === "{") {
      const open = m.index + m[0].length;
      let depth = 1;
      let at = open;
      while (depth > 0 && at < text.length) {
        if (text[at] === "{") depth += 1;
        if (text[at] === "}") depth -= 1;
        at += 1;
      }
      expand(root, prefix, text.slice(open, at - 1));
    } else {
      add(root, `${prefix}${last}`);
    }
  }
  return found;
}

/** The deepest module of the crate that a path lies in. */
function resolve(modules, path) {
  for (let n = path.length; n > 0; n -= 1) {
    const candidate = path.slice(0, n).join("::");
    if (modules.has(candidate)) return candidate;
  }
  return null;
}

function graphOf(crateDir) {
  const src = join(crateDir, "src");
  const files = rustFiles(src).filter((f) => !relative(src, f).startsWith("bin/"));
  const modules = new Map(files.map((f) => [modulePath(src, f), f]));
  modules.delete("lib");
  modules.delete("main");
  const graph = new Map();
  for (const [from, file] of modules) {
    const edges = new Set();
    for (const path of namedPaths(code(readFileSync(file, "utf8")), from)) {
      const to = resolve(modules, path);
      if (to && to !== from) edges.add(to);
    }
    graph.set(from, edges);
  }
  return graph;
}

/** Tarjan's strongly connected components, those with more than one module. */
function cycles(graph) {
  let index = 0;
  const stack = [];
  const state = new Map();
  const found = [];
  const visit = (node) => {
    const mine = { index, low: index, onStack: true };
    index += 1;
    state.set(node, mine);
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const theirs = state.get(next);
      if (!theirs) {
        visit(next);
        mine.low = Math.min(mine.low, state.get(next).low);
      } else if (theirs.onStack) {
        mine.low = Math.min(mine.low, theirs.index);
      }
    }
    if (mine.low === mine.index) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        state.get(member).onStack = false;
        component.push(member);
      } while (member !== node);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return found;
}

/** One path around a cycle, for the message: a → b → … → a. */
function pathAround(graph, component) {
  const inside = new Set(component);
  const start = component[0];
  const previous = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const node = queue.shift();
    for (const next of graph.get(node)) {
      if (next === start) {
        const path = [start];
        for (let at = node; at !== start; at = previous.get(at)) path.splice(1, 0, at);
        return [...path, start].join(" → ");
      }
      if (inside.has(next) && !previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return component.join(", ");
}

const crates = process.argv.length > 2 ? process.argv.slice(2) : DEFAULT_CRATES;
let failed = false;
for (const crate of crates) {
  try {
    statSync(join(crate, "src"));
  } catch {
    continue;
  }
  const graph = graphOf(crate);
  for (const component of cycles(graph)) {
    failed = true;
    console.log(`${crate}: import cycle among ${component.length} modules: ${component.join(", ")}`);
    console.log(`  for example ${pathAround(graph, component)}`);
  }
}
if (failed) process.exit(1);
console.log(`no import cycles between modules in ${crates.join(", ")}`);
