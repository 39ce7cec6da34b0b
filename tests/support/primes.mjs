// How many primes lie in [start, end): the tests' own oracle, a segmented
// sieve of Eratosthenes written apart from the workers' code (which the
// tests check, so it cannot also say what is right). Checked against known
// values of π(n) before it answers.

import assert from "node:assert/strict";

const SEGMENT = 1 << 20;

/** The primes below `limit`, by a plain sieve. */
function smallPrimes(limit) {
  const composite = new Uint8Array(limit + 1);
  const primes = [];
  for (let i = 2; i <= limit; i++) {
    if (composite[i]) continue;
    primes.push(i);
    for (let j = i * i; j <= limit; j += i) composite[j] = 1;
  }
  return primes;
}

function sieve(start, end) {
  if (end <= 2 || end <= start) return 0;
  const base = smallPrimes(Math.ceil(Math.sqrt(end)) + 1);
  const marks = new Uint8Array(SEGMENT);
  let count = 0;
  for (let low = Math.max(start, 2); low < end; low += SEGMENT) {
    const high = Math.min(low + SEGMENT, end);
    marks.fill(0, 0, high - low);
    for (const p of base) {
      if (p * p >= high) break;
      const first = Math.max(p * p, Math.ceil(low / p) * p);
      for (let m = first; m < high; m += p) marks[m - low] = 1;
    }
    for (let i = 0; i < high - low; i++) if (!marks[i]) count++;
  }
  return count;
}

let checked = false;

/** π(end) − π(start), counted independently of the code under test. */
export function countPrimes(start, end) {
  if (!checked) {
    // Known values: π(10⁶) = 78,498, π(10⁷) − π(10⁶) = 586,081.
    assert.equal(sieve(0, 1_000_000), 78_498);
    assert.equal(sieve(1_000_000, 10_000_000), 586_081);
    checked = true;
  }
  return sieve(start, end);
}
