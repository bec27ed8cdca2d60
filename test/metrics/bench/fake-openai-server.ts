// A fake OpenAI-compatible server for load-generator tests: streams max_tokens one-token text
// chunks (each SSE event written in two halves, so events split across reads), then a usage chunk
// and [DONE]. The requested model picks a failure: 'err503', 'hang', 'midstream', 'nodone', 'badjson'.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeServer {
  readonly url: string;
  readonly requests: { model: string; prompt: unknown; maxTokens: number; ignoreEos: boolean; stream: boolean; auth: string | undefined }[];
  close(): Promise<void>;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function writeSplit(res: ServerResponse, event: string): Promise<void> {
  const half = Math.floor(event.length / 2);
  res.write(event.slice(0, half));
  await tick();
  res.write(event.slice(half));
  await tick();
}

async function stream(
  _req: IncomingMessage,
  res: ServerResponse,
  body: { model: string; max_tokens: number; prompt: unknown },
): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const n = body.model === 'midstream' || body.model === 'nodone' ? Math.min(2, body.max_tokens) : body.max_tokens;
  for (let i = 0; i < n; i++) {
    const last = i === n - 1;
    const chunk = { id: 'c', object: 'text_completion', choices: [{ index: 0, text: 'é', finish_reason: last ? 'length' : null }] };
    await writeSplit(res, `data: ${JSON.stringify(chunk)}\n\n`);
  }
  if (body.model === 'midstream') {
    await writeSplit(res, `data: ${JSON.stringify({ error: { message: 'engine died', type: 'server_error' } })}\n\n`);
    res.end();
    return;
  }
  if (body.model === 'badjson') await writeSplit(res, 'data: {not json\n\n');
  if (body.model === 'nodone') {
    res.end();
    return;
  }
  const promptTokens = Array.isArray(body.prompt) ? body.prompt.length : 1;
  const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
  await writeSplit(res, `data: ${JSON.stringify({ choices: [], usage })}\n\n`);
  await writeSplit(res, ': keep-alive comment\r\n\r\ndata: [DONE]\r\n\r\n');
  res.end();
}

export async function startFakeServer(opts: { models?: string[]; version?: Record<string, unknown> | null } = {}): Promise<FakeServer> {
  const requests: FakeServer['requests'] = [];
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    if (req.method === 'GET' && req.url === '/v1/models') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ object: 'list', data: (opts.models ?? ['fake-model']).map((id) => ({ id, object: 'model' })) }));
      return;
    }
    if (req.method === 'GET' && req.url === '/version') {
      if (opts.version === null || opts.version === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(opts.version));
      return;
    }
    let raw = '';
    req
      .setEncoding('utf8')
      .on('data', (d: string) => {
        raw += d;
      })
      .on('end', () => {
        const body = JSON.parse(raw) as { model: string; max_tokens: number; prompt: unknown; ignore_eos?: boolean; stream?: boolean };
        requests.push({
          model: body.model,
          prompt: body.prompt,
          maxTokens: body.max_tokens,
          ignoreEos: body.ignore_eos === true,
          stream: body.stream === true,
          auth: req.headers.authorization,
        });
        if (body.model === 'err503') {
          res
            .writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' })
            .end(JSON.stringify({ error: { message: 'overloaded', type: 'server_error', code: 'server_overloaded' } }));
          return;
        }
        if (body.model === 'hang') return; // never answers: the client's timeout fires
        void stream(req, res, body);
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: async () => {
      for (const r of open) r.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
