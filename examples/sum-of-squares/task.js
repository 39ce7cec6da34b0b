// A complete Potluck task in plain JavaScript: the sum of i^power over a range.
//
// Submit it with a range split, e.g. "0 20000 1000" (20 chunks), and the
// parameters {"power": 2}. Each chunk receives {"start", "end"} and answers
// with its partial sum; the task's result lists the chunks' outputs in order,
// so the total is their sum. See docs/writing-tasks.md for the contract.
"use strict";

self.onmessage = (event) => {
  const { type, args, chunk } = event.data;
  if (type !== "run") return;
  const power = Number(args?.power ?? 2);
  const { start, end } = chunk;
  if (!Number.isInteger(power) || power < 0 || power > 4) {
    self.postMessage({ type: "error", reason: `power must be 0 to 4, not ${args?.power}` });
    return;
  }
  let sum = 0n;
  const step = Math.max(1, Math.floor((end - start) / 10));
  for (let i = start; i < end; i++) {
    sum += BigInt(i) ** BigInt(power);
    if ((i - start) % step === step - 1) {
      self.postMessage({ type: "progress", fraction: (i - start + 1) / (end - start) });
    }
  }
  // JSON has no big integers: exact sums travel as decimal strings.
  self.postMessage({ type: "result", output: { sum: sum.toString() } });
};
