// Word error rate of a transcript, scored by the same Rust code as the native
// Whisper tests (worker/whisper/src/wer.rs, through `potluck wer`), so that
// every test judges transcripts by one rule. tests/run.sh builds the binary;
// alone: `cargo build -p potluck-node --bin potluck`.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const POTLUCK = fileURLToPath(new URL("../../target/debug/potluck", import.meta.url));

/** The word error rate of `hypothesis` against `reference`, as a fraction. */
export function wer(reference, hypothesis) {
  if (!existsSync(POTLUCK)) {
    throw new Error(`${POTLUCK} is missing: build it with \`cargo build -p potluck-node --bin potluck\``);
  }
  const dir = mkdtempSync(join(tmpdir(), "potluck-wer-"));
  try {
    writeFileSync(join(dir, "reference.txt"), reference);
    writeFileSync(join(dir, "hypothesis.txt"), hypothesis);
    const out = execFileSync(POTLUCK, ["wer", join(dir, "reference.txt"), join(dir, "hypothesis.txt")], { encoding: "utf8" });
    return Number(out.trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
