// tokenmill's public API: explicit named exports only (no `export *`), so every public name is a
// decision made here. Internal modules may change freely; what is listed below is the contract.

// --- errors -------------------------------------------------------------------------------------
export { ERROR_CODES, TokenmillError, isTokenmillError, toTokenmillError } from './util/errors.js';
export type { ErrorCode, ErrorSpec, OpenAiErrorType } from './util/errors.js';

// --- runtime: backends ------------------------------------------------------------------------------
export { selectBackend, cpuAddonAvailable, probeCuda, createReferenceBackend } from './runtime/select.js';
export type { DeviceChoice, SelectOptions, Selection, CudaProbe } from './runtime/select.js';
export type { AttentionMetadata, Backend, BackendMemoryStats, HostData, KvLayer, Tensor } from './runtime/backend.js';
export type { DType, FloatDType } from './runtime/dtype.js';

// --- model: loading, tokenizer, chat templates, conversion -------------------------------------------
export { loadModel, loadModelConfigs } from './model/loader.js';
export type { LoadModelOptions, LoadedModel } from './model/loader.js';
export type { Architecture, CausalLM, ModelConfig, RopeScaling, StepInputs } from './model/types.js';
export type { GenerationConfig } from './model/generation-config.js';
export { ModelTokenizer, loadTokenizer } from './model/tokenizer.js';
export type { EncodeOptions } from './model/tokenizer.js';
export { renderChatTemplate, selectChatTemplate } from './model/chat-template.js';
export type { ChatMessage, ChatTemplateContext } from './model/chat-template.js';
export { convertLlama2c } from './model/convert/llama2c.js';
export type { Llama2cConversion } from './model/convert/llama2c.js';
export { convertGguf } from './model/convert/gguf.js';
export type { GgufConversion } from './model/convert/gguf.js';
export { makeTinyModel, writeRandomModel } from './model/random-model.js';
export type { RandomModelOptions, TinyModel, TinyModelOptions } from './model/random-model.js';
export { MODEL_PRESETS } from './model/model-presets.js';

// --- engine: sampling, stopping, detokenizing, generation ---------------------------------------------
export { DEFAULT_SAMPLING, samplingParams } from './engine/sampling-params.js';
export type { FinishReason, SamplingParams } from './engine/sampling-params.js';
export { validateSamplingParams } from './engine/sampling-validate.js';
export { createSequenceSampler } from './engine/sampler.js';
export type { SampledToken, SequenceSampler, SequenceSamplerOptions, TopLogprob } from './engine/sampler.js';
export { createRng } from './engine/rng.js';
export type { Rng } from './engine/rng.js';
export { StopChecker, stopCheckerOptions } from './engine/stop-checker.js';
export type { StopCheckResult, StopCheckerOptions, StopFinishReason } from './engine/stop-checker.js';
export { IncrementalDetokenizer } from './engine/detokenizer.js';
export type { DetokenizerOptions, TokenBytesSource } from './engine/detokenizer.js';
export { generate } from './engine/generate.js';
export type { GenerateEvent, GenerateOptions, GenerateStats } from './engine/generate.js';
export { Engine } from './engine/engine.js';
export { ENGINE_DEFAULTS } from './engine/engine-defaults.js';
export { AsyncEngine } from './engine/async-engine.js';
export type { AsyncEngineOptions } from './engine/async-engine.js';
export type { EngineOptions, SamplerFactory } from './engine/engine-config.js';
export type { EngineClient, EngineOutput, EngineRequest, EngineStats, TokenLogprob } from './engine/engine-api.js';

// --- metrics -------------------------------------------------------------------------------------------
export { usdPer1kTokens } from './metrics/cost.js';

// --- server ---------------------------------------------------------------------------------------------
export { createServer, TokenmillServer } from './server/app.js';
export type { ServerOptions, ServerState } from './server/app.js';
export { openModelStack } from './server/model-stack.js';
export type { ModelStack, ModelStackOptions } from './server/model-stack.js';
