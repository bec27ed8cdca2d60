// SSE parsing: events split across chunks at every byte, \r\n and \r line ends, multi-byte UTF-8
// characters split between chunks, comments, multi-line data and named events.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SseParser, type SseEvent } from '../../../src/metrics/loadgen/sse-parser.js';

function parseChunks(chunks: (string | Uint8Array)[]): SseEvent[] {
  const p = new SseParser();
  const out: SseEvent[] = [];
  for (const c of chunks) out.push(...p.push(c));
  out.push(...p.end());
  return out;
}

const STREAM = ': ping\n\ndata: {"a":1}\n\nevent: error\ndata: line1\ndata: line2\n\ndata: ünïcødé 😀\n\ndata: [DONE]\n\n';
const EXPECTED: SseEvent[] = [
  { event: null, data: '{"a":1}' },
  { event: 'error', data: 'line1\nline2' },
  { event: null, data: 'ünïcødé 😀' },
  { event: null, data: '[DONE]' },
];

test('one chunk', () => {
  assert.deepEqual(parseChunks([STREAM]), EXPECTED);
});

test('split at every byte boundary (UTF-8 characters split too)', () => {
  const bytes = new TextEncoder().encode(STREAM);
  for (let cut = 1; cut < bytes.length; cut++) {
    assert.deepEqual(parseChunks([bytes.subarray(0, cut), bytes.subarray(cut)]), EXPECTED, `cut at ${cut}`);
  }
  assert.deepEqual(parseChunks(Array.from(bytes, (b) => Uint8Array.of(b))), EXPECTED, 'one byte per chunk');
});

test('\\r\\n and bare \\r line ends, including a \\r\\n split between chunks', () => {
  const crlf = STREAM.replace(/\n/g, '\r\n');
  assert.deepEqual(parseChunks([crlf]), EXPECTED);
  for (let cut = 1; cut < crlf.length; cut++)
    assert.deepEqual(parseChunks([crlf.slice(0, cut), crlf.slice(cut)]), EXPECTED, `crlf cut at ${cut}`);
  assert.deepEqual(parseChunks([STREAM.replace(/\n/g, '\r')]), EXPECTED);
});

test('no space after the colon, a field without a colon, an unterminated last event is dropped', () => {
  assert.deepEqual(parseChunks(['data:x\n\ndata\n\ndata: tail']), [
    { event: null, data: 'x' },
    { event: null, data: '' },
  ]);
});
