// A complete Potluck task with an input file: count the words of a text,
// a range of its lines per chunk.
//
// Submit it with the text as its input file and a range split over its
// lines, e.g. "0 400 100" (4 chunks of 100 lines). Each chunk receives
// {"start", "end"} and the file's bytes as inputs[0], and answers with the
// words in its lines; the task's result lists the chunks' counts in order.
// See docs/writing-tasks.md for the contract.
"use strict";

self.onmessage = (event) => {
  const { type, chunk, inputs } = event.data;
  if (type !== "run") return;
  if (!inputs || inputs.length !== 1) {
    self.postMessage({ type: "error", reason: `give one text file as input, not ${inputs?.length ?? 0}` });
    return;
  }
  const lines = new TextDecoder().decode(inputs[0]).split("\n");
  let words = 0;
  for (const line of lines.slice(chunk.start, chunk.end)) {
    words += line.split(/\s+/).filter(Boolean).length;
  }
  self.postMessage({ type: "result", output: { lines: Math.max(0, Math.min(chunk.end, lines.length) - chunk.start), words } });
};
