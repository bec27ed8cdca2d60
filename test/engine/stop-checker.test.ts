// Stop checker tests: stop strings split across tokens, held-back text, multi-byte text, stop and
// EOS token ids, ignoreEos, max tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StopChecker, stopCheckerOptions, type StopCheckResult } from '../../src/engine/stop-checker.js';
import { samplingParams } from '../../src/engine/sampling-params.js';
import fc from 'fast-check';

const EOS = 2;

function checker(over: Parameters<typeof samplingParams>[0] = {}, eos: number[] = [EOS]): StopChecker {
  return new StopChecker(stopCheckerOptions(samplingParams({ maxTokens: 100, ...over }), eos));
}

/** Feed text pieces as tokens 10, 11, ...; return the released text and the last result. */
function feed(c: StopChecker, pieces: (string | number)[]): { text: string; last: StopCheckResult; released: string[] } {
  let text = '';
  const released: string[] = [];
  let last: StopCheckResult | undefined;
  pieces.forEach((p, i) => {
    last = typeof p === 'number' ? c.push(p, '') : c.push(10 + i, p);
    released.push(last.text);
    text += last.text;
  });
  return { text, last: last!, released };
}

test('no stop strings: text passes straight through', () => {
  const r = feed(checker(), ['Hello', ', ', 'world']);
  assert.deepEqual(r.released, ['Hello', ', ', 'world']);
  assert.equal(r.last.finished, false);
});

test('a stop string inside one token is cut off with everything after it', () => {
  const r = feed(checker({ stop: ['END'] }), ['abc', 'xxENDyy']);
  assert.equal(r.text, 'abcxx');
  assert.deepEqual([r.last.finished, r.last.finishReason, r.last.stopReason], [true, 'stop', 'END']);
});

test('a stop string split across three tokens; its beginning is held back meanwhile', () => {
  const c = checker({ stop: ['<|end|>'] });
  const r = feed(c, ['Hi <', '|en', 'd|>', 'more']);
  assert.deepEqual(r.released.slice(0, 3), ['Hi ', '', '']);
  assert.equal(r.text, 'Hi ');
  assert.equal(r.last.finishReason, 'stop');
});

test('held text is released once it can no longer begin a stop string', () => {
  const r = feed(checker({ stop: ['<|end|>'] }), ['a <', '|e', 'x', '!']);
  assert.deepEqual(r.released, ['a ', '', '<|ex', '!']);
  assert.equal(r.last.finished, false);
});

test('the earliest of several stop strings wins, even when a later one completes first', () => {
  const r = feed(checker({ stop: ['world', 'lo w'] }), ['hel', 'lo wor', 'ld']);
  assert.equal(r.text, 'hel');
  assert.equal(r.last.stopReason, 'lo w');
});

test('overlapping candidates: the longest possible prefix is held', () => {
  const c = checker({ stop: ['aab'] });
  assert.equal(c.push(10, 'xaa').text, 'x');
  assert.equal(c.pendingText, 'aa');
  assert.equal(c.push(11, 'a').text, 'a'); // 'aaa': only 'aa' can still begin 'aab'
  const last = c.push(12, 'b');
  assert.deepEqual([last.text, last.finishReason], ['', 'stop']);
});

test('multi-byte text: stop strings with accents, CJK and emoji split across tokens', () => {
  const r = feed(checker({ stop: ['😀終'] }), ['héllo ', '😀', '終わり']);
  assert.equal(r.text, 'héllo ');
  assert.equal(r.last.finishReason, 'stop');
  const r2 = feed(checker({ stop: ['😀終'] }), ['日本', '😀', '😀', 'x']);
  assert.equal(r2.text, '日本😀😀x');
  assert.equal(r2.last.finished, false);
});

test('EOS ends with stop, releasing held text and adding none of its own', () => {
  const r = feed(checker({ stop: ['###'] }), ['a#', '#', EOS]);
  assert.equal(r.text, 'a##');
  assert.deepEqual([r.last.finishReason, r.last.stopReason], ['stop', EOS]);
});

test('ignoreEos continues past EOS; stop token ids still stop', () => {
  const c = checker({ ignoreEos: true, stopTokenIds: [7] });
  assert.equal(c.push(EOS, 'x').finished, false);
  const r = c.push(7, 'ignored');
  assert.deepEqual([r.finished, r.finishReason, r.stopReason, r.text], [true, 'stop', 7, '']);
});

test('several EOS ids (generation config) all stop', () => {
  for (const id of [2, 128001, 128009]) {
    assert.equal(checker({}, [2, 128001, 128009]).push(id, '').finishReason, 'stop');
  }
});

test('max tokens ends with length and releases held-back text', () => {
  const c = checker({ maxTokens: 3, stop: ['STOP'] });
  const r = feed(c, ['a', 'b', 'ST']);
  assert.equal(r.text, 'abST');
  assert.deepEqual([r.last.finishReason, r.last.stopReason], ['length', null]);
  assert.equal(c.numGeneratedTokens, 3);
  assert.equal(c.push(99, 'late').text, '');
});

test('a stop string completed by the last allowed token reports stop, not length', () => {
  const r = feed(checker({ maxTokens: 2, stop: ['ab'] }), ['a', 'b']);
  assert.equal(r.last.finishReason, 'stop');
  const e = feed(checker({ maxTokens: 2 }), ['a', EOS]);
  assert.equal(e.last.finishReason, 'stop');
});

test('flush releases held text on abort', () => {
  const c = checker({ stop: ['END'] });
  assert.equal(c.push(10, 'xE').text, 'x');
  assert.equal(c.flush(), 'E');
  assert.equal(c.pendingText, '');
});

test('property: any split of any text stops at the first piece completing a stop string, cut at its earliest start; nothing leaks', () => {
  const alphabet = ['a', 'b', 'é', '😀', ' '];
  const str = (min: number, max: number) =>
    fc.array(fc.constantFrom(...alphabet), { minLength: min, maxLength: max }).map((cs) => cs.join(''));
  fc.assert(
    fc.property(
      str(0, 40),
      fc.array(str(1, 4), { minLength: 0, maxLength: 3 }),
      fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 40 }),
      (text, stops, sizes) => {
        // Split into pieces of whole code points (the detokenizer never splits a character).
        const chars = Array.from(text);
        const pieces: string[] = [];
        for (let i = 0, k = 0; i < chars.length; k++) {
          const n = sizes[k % sizes.length]!;
          pieces.push(chars.slice(i, i + n).join(''));
          i += n;
        }
        const c = checker({ stop: stops, maxTokens: 1000 });
        let out = '';
        let reason: string | null = null;
        for (const [i, piece] of pieces.entries()) {
          const r = c.push(10 + i, piece);
          out += r.text;
          if (stops.some((s) => out.includes(s))) return false; // a stop string must never be emitted
          if (r.finished) {
            reason = r.finishReason;
            break;
          }
        }
        if (reason === null) out += c.flush();
        // Reference (vLLM's rule): after the first piece whose arrival completes any stop string,
        // cut at the earliest occurrence in the text so far; without one, everything.
        let want = text;
        let soFar = '';
        for (const piece of pieces) {
          soFar += piece;
          const hits = stops.map((s) => soFar.indexOf(s)).filter((i) => i >= 0);
          if (hits.length > 0) {
            want = soFar.slice(0, Math.min(...hits));
            break;
          }
        }
        const stopped = stops.some((s) => text.includes(s));
        return out === want && (reason === 'stop') === stopped;
      },
    ),
    { seed: 4242, numRuns: 500 },
  );
});
