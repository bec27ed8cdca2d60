// Constrained decoding on the real Engine: random-weight models with the real Qwen3 and Llama 3
// vocabularies never emit valid JSON alone, so what is tested is enforcement. 1,000 seeded requests
// over 10 schemas (nested objects, arrays, enums, numbers, optional and required fields, anyOf,
// $ref, formats, patterns), run concurrently in-process: every finished output validates (ajv) and
// every output, finished or cut by max_tokens, is a token sequence a fresh matcher accepts. Also
// n > 1 (a matcher per choice), preemption by recompute (same tokens as alone), matcher rollback
// and replay, and compile failures surfacing as typed 400s through the stream.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncEngine } from '../../src/engine/async-engine.js';
import type { EngineOutput } from '../../src/engine/engine-api.js';
import { checkOutput } from '../../src/engine/grammar/constraint-check.js';
import { grammarCompilerFor } from '../../src/engine/grammar/grammar-compiler.js';
import { SequenceGrammar } from '../../src/engine/grammar/sequence-grammar.js';
import { samplingParams, type Constraint, type SamplingParams } from '../../src/engine/sampling-params.js';
import { TokenmillError } from '../../src/util/errors.js';
import { skipUnlessShared } from '../tokenizer/shared-models.js';
import { disposeRealVocabModels, realVocabModel, type RealVocabKind, type RealVocabModel } from './real-vocab-model.js';

after(disposeRealVocabModels);
const skip = skipUnlessShared('qwen3-tokenizer/tokenizer.json', 'llama3-tokenizer/tokenizer.json');

const obj = (properties: Record<string, unknown>, required = Object.keys(properties), extra: Record<string, unknown> = {}) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
  ...extra,
});

/** Schemas whose outputs are short enough to finish within max_tokens most of the time. */
export const SCHEMAS: readonly Record<string, unknown>[] = [
  obj({
    name: { type: 'string', maxLength: 3 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    color: { enum: ['red', 'green', 'blue'] },
  }),
  obj({
    point: obj({ x: { type: 'integer', minimum: -9, maximum: 9 }, y: { type: 'integer', minimum: -9, maximum: 9 } }),
    ok: { type: 'boolean' },
  }),
  obj({ items: { type: 'array', items: { enum: ['a', 'b', 'c'] }, minItems: 1, maxItems: 3 } }),
  obj({ t: { type: 'number' }, n: { type: 'integer', minimum: -5, maximum: 5 }, m: { type: 'integer', minimum: 0 } }),
  obj({ a: { type: 'boolean' }, b: { enum: [1, 2, 3] } }, ['a']),
  obj({ v: { anyOf: [{ type: 'integer', minimum: 0, maximum: 9 }, { enum: ['x', 'y'] }, { type: 'null' }] } }),
  { $defs: { p: obj({ k: { enum: ['u', 'v'] } }) }, type: 'array', items: { $ref: '#/$defs/p' }, minItems: 1, maxItems: 2 },
  obj({ d: { type: 'string', format: 'date' }, id: { type: 'string', format: 'ipv4' } }),
  obj({ code: { type: 'string', pattern: '^[A-Z]{2}[0-9]{2}$' }, flag: { const: true } }),
  obj({
    list: { type: 'array', items: obj({ id: { type: 'integer', minimum: 1, maximum: 3 } }), maxItems: 2 },
    tag: { type: ['string', 'null'], maxLength: 2 },
  }),
];

function engineFor(m: RealVocabModel, opts: { numBlocks?: number; maxNumSeqs?: number } = {}): AsyncEngine {
  return new AsyncEngine({
    model: m.model,
    modelId: 'tiny-real-vocab',
    tokenizer: m.tokenizer,
    eosTokenIds: m.eosTokenIds,
    numBlocks: opts.numBlocks ?? 512,
    blockSize: 16,
    maxNumSeqs: opts.maxNumSeqs ?? 64,
    maxNumBatchedTokens: 512,
    maxWaitingRequests: 4096,
  });
}

interface Choice {
  ids: number[];
  text: string;
  finishReason: string | null;
}

async function run(it: AsyncIterable<EngineOutput>, n: number): Promise<Choice[]> {
  const out: Choice[] = Array.from({ length: n }, () => ({ ids: [], text: '', finishReason: null }));
  for await (const o of it) {
    const c = out[o.index]!;
    c.ids.push(...o.newTokenIds);
    c.text += o.newText;
    if (o.finished) c.finishReason = o.finishReason;
  }
  return out;
}

/** A fresh matcher (not the engine's) accepts every token: no token was sampled outside the grammar. */
async function acceptsAll(m: RealVocabModel, c: Constraint, ids: readonly number[]): Promise<boolean> {
  const cache = await grammarCompilerFor(m.tokenizer, m.model.config.vocabSize, m.eosTokenIds);
  const compiled = await cache.compile(c);
  const matcher = await cache.xg.GrammarMatcher.createGrammarMatcher(compiled.compiled, [...m.eosTokenIds]);
  try {
    return ids.every((t) => matcher.acceptToken(t));
  } finally {
    matcher.dispose();
  }
}

const params = (c: Constraint, seed: number, extra: Partial<SamplingParams> = {}): SamplingParams =>
  samplingParams({ temperature: 1, seed, maxTokens: 40, constraint: c, ...extra });

/**
 * logit_bias -100 on every pure-whitespace token: random weights love the hundreds of whitespace
 * tokens the JSON grammar allows between elements, and each costs a step; most bulk requests use
 * this to keep the test fast (the rest still exercise the whitespace rules).
 */
function noWhitespace(m: RealVocabModel): Map<number, number> {
  const bias = new Map<number, number>();
  for (let id = 0; id < m.tokenizer.vocabSize; id++) {
    const b = m.tokenizer.tokenBytes(id);
    if (b.length > 0 && b.every((x) => x === 0x20 || x === 0x0a || x === 0x09 || x === 0x0d)) bias.set(id, -100);
  }
  return bias;
}

const BULK_MAX_TOKENS = 24;

async function bulk(kind: RealVocabKind, count: number, firstSeed: number): Promise<{ finished: number; cut: number }> {
  const m = await realVocabModel(kind);
  const eng = engineFor(m);
  const prompt = await m.tokenizer.encode('Answer in JSON:');
  const logitBias = noWhitespace(m);
  const jobs = Array.from({ length: count }, (_, i) => {
    const c: Constraint = { type: 'json_schema', schema: SCHEMAS[i % SCHEMAS.length]!, strict: true };
    const p = params(c, firstSeed + i, {
      maxTokens: BULK_MAX_TOKENS,
      ...(i % 5 !== 0 ? { logitBias } : {}),
      ...(i % 3 === 0 ? { temperature: 0.7, topP: 0.9 } : {}),
    });
    return run(eng.generate({ requestId: `${kind}-${i}`, promptTokenIds: [...prompt, i % 97], params: p }), 1).then((r) => ({
      c,
      choice: r[0]!,
    }));
  });
  const results = await Promise.all(jobs);
  let finished = 0;
  let cut = 0;
  for (const { c, choice } of results) {
    assert.ok(
      await acceptsAll(
        m,
        c,
        choice.ids.filter((t) => !m.eosTokenIds.includes(t)).concat(choice.finishReason === 'stop' ? [choice.ids.at(-1)!] : []),
      ),
      `${kind}: a token outside the grammar in ${JSON.stringify(choice.text)}`,
    );
    if (choice.finishReason === 'stop') {
      finished++;
      const v = checkOutput(c, choice.text);
      assert.ok(v.ok, `${kind}: ${JSON.stringify(choice.text)} fails its schema: ${v.ok ? '' : v.reason}`);
    } else {
      assert.equal(choice.finishReason, 'length');
      assert.equal(choice.ids.length, BULK_MAX_TOKENS);
      cut++;
    }
  }
  assert.equal(eng.stats().numFreeBlocks, eng.stats().numTotalBlocks);
  await eng.shutdown();
  return { finished, cut };
}

test('1,000 seeded constrained requests (Qwen3 600 + Llama 3 400 vocabularies): 0 invalid outputs', { skip }, async () => {
  const q = await bulk('qwen3', 600, 1);
  const l = await bulk('llama3', 400, 10_001);
  // Enforcement is what is tested; most of these bounded schemas finish well inside max_tokens.
  assert.ok(q.finished > 300 && l.finished > 200, `finished: qwen3 ${q.finished}/600, llama3 ${l.finished}/400`);
});

test('a SentencePiece vocabulary (Llama 2, byte fallback): 100 seeded requests, 0 invalid outputs', {
  skip: skipUnlessShared('llama2-tokenizer/tokenizer.bin'),
}, async () => {
  const r = await bulk('llama2', 100, 50_001);
  assert.ok(r.finished > 50, `finished: ${r.finished}/100`);
});

test('n > 1: every choice has its own matcher; choices differ and all validate', { skip }, async () => {
  const m = await realVocabModel('qwen3');
  const eng = engineFor(m);
  const c: Constraint = { type: 'json_schema', schema: SCHEMAS[0]! };
  const prompt = await m.tokenizer.encode('JSON please');
  const choices = await run(eng.generate({ requestId: 'n4', promptTokenIds: prompt, params: params(c, 5, { n: 4, maxTokens: 60 }) }), 4);
  for (const ch of choices) {
    assert.ok(await acceptsAll(m, c, ch.ids.slice(0, ch.finishReason === 'stop' ? undefined : ch.ids.length)));
    if (ch.finishReason === 'stop') assert.ok(checkOutput(c, ch.text).ok, ch.text);
  }
  assert.ok(new Set(choices.map((ch) => ch.text)).size > 1, 'seeded choices should differ');
  await eng.shutdown();
});

test('preemption by recompute: constrained requests keep valid outputs, identical to running alone', { skip }, async () => {
  const m = await realVocabModel('qwen3');
  const prompt = await m.tokenizer.encode('Some JSON now, with a longer prompt so that blocks fill up quickly');
  const c: Constraint = { type: 'json_schema', schema: SCHEMAS[2]! };
  const p = (i: number) => params(c, 100 + i, { maxTokens: 48, ignoreEos: false });
  const solo = engineFor(m);
  const alone = await Promise.all(
    [0, 1, 2, 3].map((i) => run(solo.generate({ requestId: `s${i}`, promptTokenIds: prompt, params: p(i) }), 1)),
  );
  await solo.shutdown();
  // 8 blocks of 16 slots: four sequences of ~30 tokens each cannot all keep their blocks.
  const tight = engineFor(m, { numBlocks: 8, maxNumSeqs: 4 });
  const busy = await Promise.all(
    [0, 1, 2, 3].map((i) => run(tight.generate({ requestId: `b${i}`, promptTokenIds: prompt, params: p(i) }), 1)),
  );
  assert.ok(tight.engine.scheduler.numPreemptions > 0, 'the tight pool should preempt');
  assert.deepEqual(
    busy.map((r) => r[0]!.ids),
    alone.map((r) => r[0]!.ids),
  );
  for (const r of busy) if (r[0]!.finishReason === 'stop') assert.ok(checkOutput(c, r[0]!.text).ok);
  await tight.shutdown();
});

test('SequenceGrammar rolls back and replays to the tokens the sequence holds', { skip }, async () => {
  const m = await realVocabModel('llama3');
  const cache = await grammarCompilerFor(m.tokenizer, m.model.config.vocabSize, m.eosTokenIds);
  const compiled = await cache.compile({ type: 'json_schema', schema: SCHEMAS[1]! });
  const text = '{"point": {"x": 3, "y": -2}, "ok": true}';
  const ids = await m.tokenizer.encode(text, { addSpecialTokens: false });
  const g = new SequenceGrammar(cache, compiled, m.eosTokenIds);
  const masks: Int32Array[] = [];
  for (let i = 0; i <= ids.length; i++) {
    await g.prepareMask(ids.slice(0, i));
    masks.push(g.mask!.slice());
    if (i < ids.length) g.accept(ids[i]!);
  }
  assert.ok(g.allows(m.eosTokenIds[0]!), 'the finished object allows a stop token');
  await g.prepareMask(ids.slice(0, 3)); // roll back
  assert.deepEqual(g.mask, masks[3]);
  await g.prepareMask(ids); // replay
  assert.deepEqual(g.mask, masks[ids.length]);
  await g.prepareMask([...ids.slice(0, 4), ...ids.slice(4)]);
  assert.equal(g.numAccepted, ids.length);
  g.dispose();
});

test('compile failures and refused schemas are typed 400s (before and through the stream)', { skip }, async () => {
  const m = await realVocabModel('qwen3');
  const eng = engineFor(m);
  const prompt = [1, 2, 3];
  assert.throws(
    () =>
      eng.generate({
        requestId: 'x',
        promptTokenIds: prompt,
        params: params({ type: 'json_schema', schema: { type: 'object', properties: { a: { oneOf: [{}] } } } }, 1),
      }),
    (e: unknown) => e instanceof TokenmillError && e.code === 'unsupported_schema_keyword',
  );
  const it = eng.generate({
    requestId: 'y',
    promptTokenIds: prompt,
    params: params({ type: 'ebnf', grammar: 'root ::= undefined_rule' }, 1),
  });
  await assert.rejects(
    run(it, 1),
    (e: unknown) => e instanceof TokenmillError && e.code === 'invalid_schema' && /not defined/.test(e.message),
  );
  // The engine still serves (the WASM module survives the compiler's abort).
  const ok = await run(
    eng.generate({ requestId: 'z', promptTokenIds: prompt, params: params({ type: 'regex', pattern: '(yes|no)' }, 2, { maxTokens: 8 }) }),
    1,
  );
  assert.equal(ok[0]!.finishReason, 'stop');
  assert.match(ok[0]!.text, /^(yes|no)$/);
  const obj = await run(
    eng.generate({ requestId: 'j', promptTokenIds: prompt, params: params({ type: 'json_object' }, 3, { maxTokens: 24 }) }),
    1,
  );
  if (obj[0]!.finishReason === 'stop') assert.ok(checkOutput({ type: 'json_object' }, obj[0]!.text).ok);
  else assert.ok(obj[0]!.text.trimStart().startsWith('{'));
  await eng.shutdown();
});

test('structural tag (tool calling shape): a required <tool_call> with schema-checked arguments; the marker token is allowed', {
  skip,
}, async () => {
  const m = await realVocabModel('qwen3');
  const eng = engineFor(m);
  const args = obj({ city: { enum: ['Paris', 'Oslo'] }, days: { type: 'integer', minimum: 1, maximum: 7 } });
  const c: Constraint = {
    type: 'structural_tag',
    // A required call: the output is the tag itself (triggered_tags would allow free text before it).
    format: {
      type: 'tag',
      begin: '<tool_call>\n{"name": "get_weather", "arguments": ',
      content: { type: 'json_schema', json_schema: args },
      end: '}\n</tool_call>',
    },
  };
  const toolCallId = m.tokenizer.tokenId('<tool_call>')!;
  const prompt = await m.tokenizer.encode('Call the tool.');
  const logitBias = noWhitespace(m);
  let complete = 0;
  for (let seed = 0; seed < 6; seed++) {
    const [r] = await run(
      eng.generate({ requestId: `t${seed}`, promptTokenIds: prompt, params: params(c, seed, { maxTokens: 96, logitBias }) }),
      1,
    );
    assert.ok(await acceptsAll(m, c, r!.ids));
    if (r!.finishReason !== 'stop') continue;
    complete++;
    const body = /<tool_call>\n(\{"name": "get_weather", "arguments": [\s\S]*\})\n<\/tool_call>$/.exec(r!.text);
    assert.ok(body, r!.text);
    const call = JSON.parse(body[1]!) as { arguments: unknown };
    assert.ok(checkOutput({ type: 'json_schema', schema: args }, JSON.stringify(call.arguments)).ok, body[1]);
  }
  assert.ok(complete >= 3, `${complete}/6 calls completed`);
  // The marker is an added (non-special) token: the grammar lets it be emitted as that one token.
  const cache = await grammarCompilerFor(m.tokenizer, m.model.config.vocabSize, m.eosTokenIds);
  const g = new SequenceGrammar(cache, await cache.compile(c), m.eosTokenIds);
  await g.prepareMask([]);
  assert.ok(g.allows(toolCallId));
  g.dispose();
  await eng.shutdown();
});
