// A backend whose allocations fail, injected under the real engine through a thin wrapper (not a
// fake engine). (A model step that throws: test/server/engine-fault.test.ts, through ModelFault.)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import { detokenizerFor } from '../../src/engine/output-processor.js';
import { loadModel } from '../../src/model/loader.js';
import { MODEL_PRESETS } from '../../src/model/model-presets.js';
import { writeRandomModel } from '../../src/model/random-model.js';
import type { Backend } from '../../src/runtime/backend.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../src/runtime/select.js';
import { TokenmillError } from '../../src/util/errors.js';
import { BOS, EOS } from '../server/byte-frontend.js';
import { startRealLive } from '../server/helpers.js';
import { BYTE_TOKENS } from '../server/real-engine.js';

const work = mkdtempSync(join(tmpdir(), 'tm-engine-faults-'));
after(() => rmSync(work, { recursive: true, force: true }));
const dir = join(work, 'model');
writeRandomModel(
  dir,
  { ...MODEL_PRESETS['tiny-llama']!.config, vocab_size: 258, bos_token_id: BOS, eos_token_id: EOS, max_position_embeddings: 256 },
  { seed: 8, tokenizer: false },
);
const realBackend = (): Backend => (cpuAddonAvailable().available ? createCpuBackend({ numThreads: 1 }) : createReferenceBackend());

/** The backend, with alloc() failing as the native addon does when memory runs out, while `fail()` holds. */
function failingAlloc(b: Backend, fail: () => boolean, counter: { allocs: number }): Backend {
  return new Proxy(b, {
    get(t, p) {
      if (p === 'alloc')
        return (...args: Parameters<Backend['alloc']>) => {
          counter.allocs++;
          if (fail()) throw new TokenmillError('out_of_memory', `injected: cannot allocate [${args[0].join(', ')}] ${args[1]}`);
          return t.alloc(...args);
        };
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
}

test('a backend that fails to allocate the KV pool: a typed out_of_memory at start-up, nothing left allocated', async () => {
  const b = realBackend();
  let failing = false;
  const counter = { allocs: 0 };
  const backend = failingAlloc(b, () => failing, counter);
  const { model } = await loadModel(dir, backend);
  const weightsBytes = b.memoryStats().allocatedBytes;
  failing = true;
  assert.throws(
    () => new AsyncEngine({ modelId: 'm', model, numBlocks: 64, detokenizer: detokenizerFor(BYTE_TOKENS), usdPerHour: 1 }),
    (e: unknown) => e instanceof TokenmillError && e.code === 'out_of_memory' && e.fatal,
  );
  assert.equal(b.memoryStats().allocatedBytes, weightsBytes, 'a half-built KV pool is freed');
  failing = false;
  model.dispose();
});

test('serving allocates nothing after start-up: an allocation failure can only happen there', { timeout: 120_000 }, async () => {
  // Buffers (KV pool, workspace, batch inputs) are sized once, so the start-up check above is the
  // whole story: once serving, no request can meet a failing allocation.
  const counter = { allocs: 0 };
  const { model } = await loadModel(
    dir,
    failingAlloc(realBackend(), () => false, counter),
  );
  const live = await startRealLive({ engine: { model } });
  try {
    const atStart = counter.allocs;
    const post = (body: unknown) =>
      fetch(`${live.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const rs = await Promise.all([
      post({ prompt: 'a', max_tokens: 2 }),
      post({ prompt: 'abcdefgh'.repeat(20), max_tokens: 8, n: 4 }),
      post({ prompt: 'xyz', max_tokens: 30, logprobs: 3 }),
    ]);
    for (const r of rs) assert.equal(r.status, 200, await r.text());
    assert.equal(counter.allocs, atStart);
  } finally {
    await live.close().catch(() => undefined);
  }
});
