// `tokenmill generate`: one prompt through one model, text streamed to stdout and a summary (prompt
// tokens, generated tokens, prefill and decode tok/s) on stderr. Arguments are validated before
// anything heavy loads; the model stack is imported lazily so usage errors stay fast.
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { DEFAULT_SAMPLING, type SamplingParams } from '../engine/sampling-params.js';
import { randomSeed } from '../engine/rng.js';
import { validateSamplingParams } from '../engine/sampling-validate.js';
import type { GenerationConfig } from '../model/generation-config.js';
import type { DeviceChoice } from '../runtime/select.js';
import { TokenmillError, isTokenmillError } from '../util/errors.js';
import { collect, floatArg, intArg, positiveIntArg } from './options.js';
import { backendOptionsFromEnv, engineOptionsFromEnv } from './env.js';
import { addBackendFlags } from './backend-flags.js';

export interface GenerateCliOptions {
  readonly model: string;
  readonly prompt?: string;
  readonly promptFile?: string;
  readonly chat?: boolean;
  readonly chatTemplate?: string;
  readonly system?: string;
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topK?: number;
  readonly topP?: number;
  readonly minP?: number;
  readonly repetitionPenalty?: number;
  readonly presencePenalty?: number;
  readonly frequencyPenalty?: number;
  readonly seed?: number;
  readonly stop?: string[];
  readonly ignoreEos?: boolean;
  readonly device: DeviceChoice;
  readonly threads?: number;
  readonly maxTokensPerStep?: number;
  /** Weight-only quantization of the linear layers (model/quantize.ts). */
  readonly quantize?: 'int8' | 'q8_0';
  readonly debug?: boolean;
}

/** CLI flag for each SamplingParams validation `param`, so errors name what the user typed. */
const FLAG_OF: Readonly<Record<string, string>> = {
  temperature: '--temperature',
  top_k: '--top-k',
  top_p: '--top-p',
  min_p: '--min-p',
  repetition_penalty: '--repetition-penalty',
  presence_penalty: '--presence-penalty',
  frequency_penalty: '--frequency-penalty',
  seed: '--seed',
  max_tokens: '--max-tokens',
  stop: '--stop',
};

/**
 * Sampling params from the flags; the model's generation_config.json fills the knobs the user left
 * out (as `vllm --generation-config auto`), then tokenmill's defaults.
 */
export function samplingFromCli(o: GenerateCliOptions, gen: Partial<GenerationConfig> = {}): SamplingParams {
  const params: SamplingParams = {
    ...DEFAULT_SAMPLING,
    temperature: o.temperature ?? (gen.doSample === false ? 0 : (gen.temperature ?? DEFAULT_SAMPLING.temperature)),
    topK: o.topK ?? gen.topK ?? DEFAULT_SAMPLING.topK,
    topP: o.topP ?? gen.topP ?? DEFAULT_SAMPLING.topP,
    minP: o.minP ?? DEFAULT_SAMPLING.minP,
    repetitionPenalty: o.repetitionPenalty ?? gen.repetitionPenalty ?? DEFAULT_SAMPLING.repetitionPenalty,
    presencePenalty: o.presencePenalty ?? 0,
    frequencyPenalty: o.frequencyPenalty ?? 0,
    seed: o.seed ?? null,
    maxTokens: o.maxTokens ?? DEFAULT_SAMPLING.maxTokens,
    stop: o.stop ?? [],
    ignoreEos: o.ignoreEos ?? false,
  };
  try {
    return validateSamplingParams(params);
  } catch (e) {
    if (isTokenmillError(e) && e.param !== null && FLAG_OF[e.param] !== undefined) {
      throw new TokenmillError(e.code, `${FLAG_OF[e.param]}: ${e.message}`, { param: e.param, cause: e });
    }
    throw e;
  }
}

/** The knobs in effect, defaults left out; the seed always (with --seed it reproduces the run). */
export function describeSampling(p: SamplingParams): string {
  if (p.temperature === 0) return 'greedy' + describePenalties(p);
  const parts = [`temperature ${p.temperature}`];
  if (p.topK > 0) parts.push(`top-k ${p.topK}`);
  if (p.topP < 1) parts.push(`top-p ${p.topP}`);
  if (p.minP > 0) parts.push(`min-p ${p.minP}`);
  return parts.join(', ') + describePenalties(p) + `, seed ${p.seed ?? 'random'}`;
}

function describePenalties(p: SamplingParams): string {
  const parts: string[] = [];
  if (p.repetitionPenalty !== 1) parts.push(`repetition-penalty ${p.repetitionPenalty}`);
  if (p.presencePenalty !== 0) parts.push(`presence-penalty ${p.presencePenalty}`);
  if (p.frequencyPenalty !== 0) parts.push(`frequency-penalty ${p.frequencyPenalty}`);
  return parts.length > 0 ? ', ' + parts.join(', ') : '';
}

export function formatSummary(s: import('../engine/generate.js').GenerateStats, finishReason: string): string {
  return (
    `[tokenmill] prompt tokens: ${s.numPromptTokens}, generated tokens: ${s.numGeneratedTokens} (finish: ${finishReason}), ` +
    `prefill: ${s.prefillTokPerS.toFixed(1)} tok/s, decode: ${s.decodeTokPerS.toFixed(1)} tok/s\n`
  );
}

async function runGenerate(o: GenerateCliOptions): Promise<void> {
  if (o.system !== undefined && o.chat !== true) throw new TokenmillError('invalid_argument', '--system needs --chat', { param: 'system' });
  if (o.chatTemplate !== undefined && o.chat !== true)
    throw new TokenmillError('invalid_argument', '--chat-template needs --chat', { param: 'chat-template' });
  const chatTemplate =
    o.chatTemplate === undefined
      ? undefined
      : (await import('../model/builtin-chat-templates.js')).resolveChatTemplate(o.chatTemplate).template;
  if ((o.prompt === undefined) === (o.promptFile === undefined)) {
    throw new TokenmillError('invalid_argument', 'give exactly one of --prompt and --prompt-file', { param: 'prompt' });
  }
  samplingFromCli(o); // usage errors before anything loads
  const [{ selectBackend }, { loadModel, loadModelConfigs }, { loadTokenizer }, { generate }] = await Promise.all([
    import('../runtime/select.js'),
    import('../model/loader.js'),
    import('../model/tokenizer.js'),
    import('../engine/generate.js'),
  ]);
  const { generationConfig } = loadModelConfigs(o.model); // model_not_found / config errors before the backend starts
  // Pick the seed here (not in the sampler) so the summary can print it: any run can be replayed.
  const fromCli = samplingFromCli(o, generationConfig);
  const params: SamplingParams = fromCli.seed === null ? { ...fromCli, seed: randomSeed() } : fromCli;
  const tokenizer = loadTokenizer(o.model);
  const promptTokenIds = await encodePrompt(o, o.prompt ?? readPromptFile(o.promptFile!), tokenizer, chatTemplate);
  const threads = o.threads !== undefined ? { numThreads: o.threads } : {};
  const select = () => selectBackend({ ...backendOptionsFromEnv(), device: o.device, ...threads });
  const { backend, reason } = o.device === 'auto' ? withHint(select) : select();
  try {
    const loaded = await loadModel(o.model, backend, {
      maxTokensPerStep: o.maxTokensPerStep,
      ...(o.quantize !== undefined ? { quantize: o.quantize } : {}),
    });
    const { model } = loaded;
    try {
      process.stderr.write(`[tokenmill] ${loaded.config.architecture} from ${o.model}; backend: ${reason}\n`);
      process.stderr.write(`[tokenmill] sampling: ${describeSampling(params)}\n`);
      // Ctrl-C ends generation after the current step (summary still printed); a second one exits.
      const ac = new AbortController();
      const onSigint = (): void => {
        if (ac.signal.aborted) process.exit(130);
        ac.abort();
      };
      process.on('SIGINT', onSigint);
      try {
        const gen = generate(model, tokenizer, promptTokenIds, {
          params,
          eosTokenIds: loaded.config.eosTokenIds,
          signal: ac.signal,
          ...engineOptionsFromEnv(),
        });
        for await (const ev of gen) {
          if (ev.text.length > 0) process.stdout.write(ev.text);
          if (ev.finishReason !== null && ev.stats !== undefined) {
            if (process.stdout.isTTY === true) process.stdout.write('\n');
            process.stderr.write(formatSummary(ev.stats, ev.finishReason));
            if (ev.finishReason === 'abort') process.exitCode = 130;
          }
        }
      } finally {
        process.off('SIGINT', onSigint);
      }
    } finally {
      model.dispose();
    }
  } finally {
    backend.dispose();
  }
}

/** `--device auto` with nothing usable: point at the reference backend. */
function withHint<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (isTokenmillError(e) && e.code === 'backend_unavailable') {
      throw new TokenmillError(e.code, `${e.message} (--device reference runs the slow plain-TypeScript backend)`, { cause: e });
    }
    throw e;
  }
}

function readPromptFile(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file_not_found' : 'io_error';
    throw new TokenmillError(code, `cannot read the prompt file ${path}: ${(e as Error).message}`, { cause: e });
  }
}

async function encodePrompt(
  o: GenerateCliOptions,
  prompt: string,
  tokenizer: import('../model/tokenizer.js').ModelTokenizer,
  chatTemplate: string | undefined,
): Promise<number[]> {
  if (o.chat !== true) return tokenizer.encode(prompt);
  const { renderChatTemplate, selectChatTemplate } = await import('../model/chat-template.js');
  const template = chatTemplate ?? selectChatTemplate(tokenizer.chatTemplates);
  if (template === null) {
    throw new TokenmillError(
      'chat_template_missing',
      `${o.model} has no chat template: pass --chat-template FILE|NAME (chatml, llama2, llama3, plain), or drop --chat to send ` +
        'the prompt as plain text',
    );
  }
  const messages = [...(o.system !== undefined ? [{ role: 'system', content: o.system }] : []), { role: 'user', content: prompt }];
  const text = await renderChatTemplate(template, {
    messages,
    addGenerationPrompt: true,
    bosToken: tokenizer.config.bosToken,
    eosToken: tokenizer.config.eosToken,
  });
  return tokenizer.encode(text);
}

export function register(program: Command): void {
  addBackendFlags(
    program
      .command('generate')
      .description('generate text from a prompt with a local model directory')
      .requiredOption('--model <dir>', 'model directory (config.json, *.safetensors, tokenizer.json)')
      .option('--prompt <text>', 'the prompt')
      .option('--prompt-file <path>', 'read the prompt from a file (- for stdin)')
      .option('--chat', "wrap the prompt in the model's chat template")
      .option('--system <text>', 'system message (with --chat)')
      .option(
        '--chat-template <file|name>',
        "with --chat: a template replacing the model's (Jinja file, inline, or chatml | llama2 | llama3 | plain)",
      )
      .option('--max-tokens <n>', `most tokens to generate (default ${DEFAULT_SAMPLING.maxTokens})`, positiveIntArg)
      .option('--temperature <t>', '0 for greedy (default: generation_config.json, else 1)', floatArg)
      .option('--top-k <k>', 'sample from the k most likely tokens (0 disables)', intArg)
      .option('--top-p <p>', 'nucleus sampling mass (1 disables)', floatArg)
      .option('--min-p <p>', 'drop tokens below p * the top probability (0 disables)', floatArg)
      .option('--repetition-penalty <r>', 'penalize prompt and output tokens (1 disables)', floatArg)
      .option('--presence-penalty <p>', 'OpenAI presence penalty over output tokens', floatArg)
      .option('--frequency-penalty <f>', 'OpenAI frequency penalty over output tokens', floatArg)
      .option('--seed <s>', 'random seed: same seed, same text', intArg)
      .option('--stop <text>', 'stop string (repeatable)', collect)
      .option('--ignore-eos', 'keep generating past end-of-sequence tokens')
      .option('--max-tokens-per-step <n>', 'prefill chunk size (tokens per forward pass)', positiveIntArg),
  )
    .option('--debug', 'print stack traces on errors')
    .action((opts: GenerateCliOptions) => runGenerate(opts));
}
