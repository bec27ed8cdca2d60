// The one registry of error codes. Every user-facing failure throws a TokenmillError with a code
// from this table; each code carries its HTTP status, OpenAI error type and a doc line, and a test
// keeps docs/errors.md in sync. invariant() (not this) is for our own bugs.

export type OpenAiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error';

export interface ErrorSpec {
  readonly httpStatus: number;
  readonly type: OpenAiErrorType;
  /** One line for docs/errors.md: what it means and what to do. */
  readonly doc: string;
  /** A fatal code marks the engine dead (in-flight requests fail, /health turns 503). */
  readonly fatal?: boolean;
}

const bad = (doc: string): ErrorSpec => ({ httpStatus: 400, type: 'invalid_request_error', doc });
const server = (doc: string, fatal = false): ErrorSpec => ({ httpStatus: 500, type: 'server_error', doc, fatal });

export const ERROR_CODES = {
  // --- arguments and files -----------------------------------------------------------------
  invalid_argument: bad(
    'A CLI argument or API parameter is out of range or malformed (a token id outside the vocabulary, an empty prompt, a sampling knob ' +
      'out of range); `param` names it.',
  ),
  file_not_found: { httpStatus: 404, type: 'not_found_error', doc: 'A file or directory named by the user does not exist.' },
  io_error: server('Reading or writing a file failed (permissions, disk full).'),

  // --- model files ---------------------------------------------------------------------------
  safetensors_truncated: bad('A safetensors file is shorter than its header says (incomplete download?).'),
  safetensors_header_too_large: bad('A safetensors header length exceeds the cap (corrupt or hostile file).'),
  safetensors_bad_header: bad('A safetensors header is not valid JSON or has the wrong structure.'),
  safetensors_bad_dtype: bad('A tensor uses a dtype outside the allowlist (F32, F16, BF16, and integer metadata types).'),
  safetensors_bad_offsets: bad("A tensor's data offsets fall outside the file's data section or are reversed."),
  safetensors_overlap: bad("Two tensors' byte ranges overlap in a safetensors file."),
  safetensors_size_mismatch: bad("A tensor's byte size differs from shape x dtype size."),
  tensor_missing: bad('A weight the architecture needs is absent from the checkpoint.'),
  tensor_shape_mismatch: bad("A weight's shape disagrees with config.json."),
  config_missing_field: bad('config.json lacks a field the architecture needs.'),
  config_invalid: bad('config.json has a field with an invalid value or is not valid JSON.'),
  unsupported_architecture: bad('config.json names an architecture tokenmill does not implement.'),
  model_not_found: {
    httpStatus: 404,
    type: 'not_found_error',
    doc: 'The requested model is not served here, or the model directory does not exist.',
  },
  gguf_invalid: bad('A GGUF file is malformed or uses an unsupported tensor type or architecture.'),
  gguf_unsupported_type: bad(
    'A GGUF tensor has a ggml type tokenmill cannot compute on (IQ*, Q2_K, Q3_K, ...); the message names the tensor and the type.',
  ),
  llama2c_invalid: bad('A llama2.c checkpoint or tokenizer.bin is malformed (size or header mismatch).'),
  hub_download_failed: server('Downloading a model from the hub failed.'),

  // --- tokenizer and templates ---------------------------------------------------------------
  tokenizer_invalid: bad('tokenizer.json is missing or cannot be loaded.'),
  chat_template_missing: bad('The model has no chat template, so chat requests cannot be rendered.'),
  chat_template_error: bad('Rendering the chat template failed.'),
  chat_template_timeout: bad('Rendering the chat template exceeded its time limit.'),

  // --- runtime --------------------------------------------------------------------------------
  backend_unavailable: server('The requested backend (cpu addon or cuda) cannot be loaded on this machine.'),
  native_error: server('A native kernel reported an error.', true),
  cuda_error: server('A CUDA call failed; the message carries the CUDA error string.', true),
  out_of_memory: server('A device or host allocation failed.', true),

  // --- network set-up (CLI) ------------------------------------------------------------------
  port_in_use: server('The address and port serve was told to bind are taken by another process (pick another --port).'),
  dependency_missing: server('An optional package a flag needs did not load (serve --kv-events-endpoint needs zeromq).'),
  server_unreachable: {
    httpStatus: 502 as number,
    type: 'server_error',
    doc: 'A client command (bench serve) got no answer from the server URL it was given (connection refused, timeout).',
  },

  // --- requests ------------------------------------------------------------------------------
  context_length_exceeded: bad('Prompt tokens plus requested tokens exceed the model context length.'),
  unsupported_feature: bad('The request asks for a feature not supported yet (tools, response_format).'),
  invalid_request: bad('The request body failed schema validation.'),
  invalid_api_key: { httpStatus: 401, type: 'authentication_error', doc: 'Missing or wrong API key.' },
  not_found: { httpStatus: 404, type: 'not_found_error', doc: 'Unknown route.' },
  request_too_large: { httpStatus: 413, type: 'invalid_request_error', doc: 'Request body exceeds the size limit.' },
  unsupported_media_type: { httpStatus: 415, type: 'invalid_request_error', doc: 'Content-Type must be application/json.' },
  rate_limit_exceeded: {
    httpStatus: 429,
    type: 'rate_limit_error',
    doc: 'The API key exceeded its token bucket; retry after the given delay.',
  },
  server_overloaded: {
    httpStatus: 503,
    type: 'server_error',
    doc:
      'Admission refused: the waiting queue is at its bound (--max-queue) or its estimated wait exceeds --max-queue-wait; ' +
      'retry after the Retry-After delay.',
  },
  server_draining: { httpStatus: 503, type: 'server_error', doc: 'The server is shutting down and accepts no new requests.' },
  engine_dead: server('The engine hit a fatal fault; the process is exiting.', true),
  request_aborted: { httpStatus: 499 as number, type: 'invalid_request_error', doc: 'The request was cancelled by the client.' },
  internal_error: server('An unexpected internal fault (a bug: please report it).'),

  // --- constrained decoding (structured outputs, tool-call grammars) ---------------------------
  unsupported_schema_keyword: bad(
    'A JSON schema uses a keyword (or string format) the grammar engine cannot enforce; the message names it and its path. Remove ' +
      'or rewrite it.',
  ),
  invalid_schema: bad('A JSON schema (or grammar) is not valid: malformed, an unresolvable $ref, or rejected by the grammar compiler.'),
  schema_too_large: bad('A JSON schema exceeds the compile-time bound (32 KiB of JSON, 24 levels of nesting, 1000 subschemas).'),
  structured_output_invalid: server('A finished constrained output failed validation against its schema (a bug: please report it).'),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class TokenmillError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly type: OpenAiErrorType;
  /** Which request field the error is about (OpenAI `param`), if any. */
  readonly param: string | null;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, opts: { param?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TokenmillError';
    this.code = code;
    const spec: ErrorSpec = ERROR_CODES[code];
    this.httpStatus = spec.httpStatus;
    this.type = spec.type;
    this.param = opts.param ?? null;
    this.details = opts.details ?? {};
  }

  get fatal(): boolean {
    return (ERROR_CODES[this.code] as ErrorSpec).fatal === true;
  }
}

export function isTokenmillError(e: unknown): e is TokenmillError {
  return e instanceof TokenmillError;
}

/** Wrap anything thrown into a TokenmillError, keeping typed ones as they are. */
export function toTokenmillError(e: unknown): TokenmillError {
  if (e instanceof TokenmillError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new TokenmillError('internal_error', msg, { cause: e });
}

/** A failed filesystem call on `path`: file_not_found when it does not exist, else io_error. `what` leads the message. */
export function fileError(e: unknown, what: string, path: string): TokenmillError {
  const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file_not_found' : 'io_error';
  return new TokenmillError(code, `${what}: ${(e as Error).message}`, { cause: e, details: { file: path } });
}
