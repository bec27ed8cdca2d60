// The child process of the mutation suite: opens each mutant it is sent over IPC the way `serve`
// does (tokenizer, weights, chat template, one generated token) and replies with what happened.
// Runs in its own process so that a crash, a hang or a runaway allocation is seen, not suffered.
import { convertLlama2c } from '../../../src/model/convert/llama2c.js';
import { generate } from '../../../src/engine/generate.js';
import { samplingParams } from '../../../src/engine/sampling-params.js';
import { loadModel } from '../../../src/model/loader.js';
import { loadTokenizer } from '../../../src/model/tokenizer.js';
import { cpuAddonAvailable, createCpuBackend, createReferenceBackend } from '../../../src/runtime/select.js';
import { TokenizerFrontend } from '../../../src/server/model-frontend.js';
import { TokenmillError } from '../../../src/util/errors.js';
import type { LoadJob } from './formats.js';

export interface ChildReply {
  readonly id: number;
  readonly ok: boolean;
  /** ok: the stage reached; failed: the stage that threw. */
  readonly stage: string;
  readonly tokens?: number;
  readonly typed?: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly file?: string;
  readonly stack?: string;
}

const backend = cpuAddonAvailable().available ? createCpuBackend({ numThreads: 1 }) : createReferenceBackend();
/** Render bound for hostile templates: short, the suite has many of them. */
const TEMPLATE_TIMEOUT_MS = 600;

async function open(job: LoadJob, stage: { name: string }): Promise<number> {
  let dir: string;
  if (job.kind === 'llama2c') {
    stage.name = 'convert';
    convertLlama2c(job.modelBin, job.tokenizerBin, job.outDir);
    dir = job.outDir;
  } else dir = job.kind === 'dir' ? job.dir : job.file;
  stage.name = 'tokenizer';
  const tokenizer = loadTokenizer(dir);
  stage.name = 'weights';
  const loaded = await loadModel(dir, backend);
  try {
    stage.name = 'frontend';
    const frontend = new TokenizerFrontend(tokenizer, {
      eosTokenIds: loaded.config.eosTokenIds,
      vocabSize: loaded.config.vocabSize,
      templateTimeoutMs: TEMPLATE_TIMEOUT_MS,
    });
    try {
      let prompt = 'Once upon a time';
      if (frontend.hasChatTemplate) {
        stage.name = 'render';
        prompt = await frontend.renderChat([{ role: 'user', content: 'hello' }], { addGenerationPrompt: true });
      }
      stage.name = 'encode';
      const ids = await frontend.encode(prompt, { addSpecialTokens: !frontend.hasChatTemplate });
      stage.name = 'generate';
      let n = 0;
      for await (const ev of generate(loaded.model, tokenizer, ids.length > 0 ? ids : [0], {
        params: samplingParams({ temperature: 0, maxTokens: 1 }),
      }))
        n += ev.tokenIds.length;
      return n;
    } finally {
      await frontend.close();
    }
  } finally {
    loaded.model.dispose();
  }
}

process.on('message', (m: { id: number; job: LoadJob }) => {
  const stage = { name: 'start' };
  open(m.job, stage).then(
    (tokens) => process.send!({ id: m.id, ok: true, stage: stage.name, tokens } satisfies ChildReply),
    (e: unknown) => {
      const typed = e instanceof TokenmillError;
      const err = e instanceof Error ? e : new Error(String(e));
      const file = typed ? (e.details.file as string | undefined) : undefined;
      process.send!({
        id: m.id,
        ok: false,
        stage: stage.name,
        typed,
        code: typed ? e.code : err.name,
        message: err.message.slice(0, 2000),
        file,
        stack: err.stack?.slice(0, 3000),
      } satisfies ChildReply);
    },
  );
});
process.send!({ id: 0, ok: true, stage: 'ready' } satisfies ChildReply);
