// Reading back what the widget's task list says in words: the prime count a
// status shows (its digits grouped in the browser's locale) and the range a
// prime count covers (its data-start and data-end, as the title is in words).

/** The number in "Done: 21,336,326 primes", whatever the digit separator; NaN if it says otherwise. */
export function primesShown(status) {
  const match = status.match(/^Done: ([\d\D]+) primes?$/);
  return match ? Number(match[1].replace(/\D/g, "")) : NaN;
}

/** Each prime count's `[start, end]` as `widget` shows it, by task id. */
export function shownRanges(widget) {
  return widget.getByTestId("task").evaluateAll((els) => Object.fromEntries(els
    .filter((e) => e.dataset.start !== undefined)
    .map((e) => [e.dataset.taskId, [Number(e.dataset.start), Number(e.dataset.end)]])));
}
