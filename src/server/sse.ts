// Server-sent events over a hijacked fastify reply: headers written on open() (with whatever the
// hooks already set, e.g. x-request-id and CORS), `data: <json>\n\n` events, `: comment` lines,
// and `data: [DONE]`; or named events (`event: <type>` + data, the Responses API) closed without
// [DONE]. Writes after the client went away are dropped.

import type { FastifyReply } from 'fastify';

export class SseStream {
  private opened = false;
  private ended = false;

  constructor(private readonly reply: FastifyReply) {}

  get isOpen(): boolean {
    return this.opened;
  }

  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.reply.hijack();
    const headers: Record<string, string | number | string[]> = {};
    for (const [k, v] of Object.entries(this.reply.getHeaders())) if (v !== undefined) headers[k] = v as string | number | string[];
    this.reply.raw.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.reply.raw.flushHeaders?.();
  }

  data(obj: unknown): void {
    this.write(`data: ${JSON.stringify(obj)}\n\n`);
  }

  /** A named event (`event: type` then its data line), as the Responses API streams. */
  event(type: string, obj: unknown): void {
    this.write(`event: ${type}\ndata: ${JSON.stringify(obj)}\n\n`);
  }

  comment(text: string): void {
    this.write(`: ${text}\n\n`);
  }

  done(): void {
    this.write('data: [DONE]\n\n');
    this.end();
  }

  /** End the stream without [DONE] (the Responses API ends with its response.* event). */
  end(): void {
    if (!this.ended) {
      this.ended = true;
      this.reply.raw.end();
    }
  }

  private write(s: string): void {
    if (this.ended || this.reply.raw.destroyed) return;
    this.reply.raw.write(s);
  }
}
