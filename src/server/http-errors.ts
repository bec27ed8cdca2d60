// Error -> HTTP: the OpenAI envelope {error: {message, type, param, code}} with the status from the
// error registry, Retry-After on 429/503, x-should-retry: false on 500s. Also maps fastify's own
// errors (body too large, bad JSON, wrong content type) onto registry codes.

import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { TokenmillError, toTokenmillError, type ErrorCode } from '../util/errors.js';

export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export function envelope(e: TokenmillError): ErrorEnvelope {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** Seconds a client should wait before retrying a 429/503 (from details.retryAfterSeconds). */
export function retryAfterSeconds(e: TokenmillError): number | null {
  if (e.httpStatus !== 429 && e.httpStatus !== 503) return null;
  const v = e.details.retryAfterSeconds;
  return typeof v === 'number' && v > 0 ? Math.ceil(v) : 1;
}

/** Headers that go with an error response. */
export function errorHeaders(e: TokenmillError): Record<string, string> {
  const h: Record<string, string> = {};
  const ra = retryAfterSeconds(e);
  if (ra !== null) h['retry-after'] = String(ra);
  if (e.httpStatus >= 500 && e.httpStatus !== 503) h['x-should-retry'] = 'false';
  return h;
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'request_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_request',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_request',
  FST_ERR_VALIDATION: 'invalid_request',
};

/** Any thrown value -> TokenmillError, translating fastify's framework errors. */
export function toHttpError(e: unknown): TokenmillError {
  if (e instanceof TokenmillError) return e;
  const err = e as { code?: string; statusCode?: number; message?: string };
  const mapped = err?.code ? FASTIFY_CODES[err.code] : undefined;
  if (mapped) {
    const msg =
      mapped === 'invalid_request' && err.code !== 'FST_ERR_CTP_EMPTY_JSON_BODY'
        ? `The request body is not valid JSON: ${err.message ?? ''}`.trim()
        : (err.message ?? mapped);
    return new TokenmillError(mapped, msg);
  }
  // JSON.parse SyntaxError from the body parser surfaces with statusCode 400.
  if (err?.statusCode === 400) return new TokenmillError('invalid_request', `Bad request: ${err.message ?? ''}`);
  if (err?.statusCode === 413) return new TokenmillError('request_too_large', err.message ?? 'Request body too large.');
  if (err?.statusCode === 415) return new TokenmillError('unsupported_media_type', err.message ?? 'Unsupported media type.');
  return toTokenmillError(e);
}

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  const te = toHttpError(e);
  const status = te.httpStatus === 499 ? 400 : te.httpStatus;
  return reply.code(status).headers(errorHeaders(te)).type('application/json; charset=utf-8').send(envelope(te));
}

/**
 * Fastify's router errors (fastify option frameworkErrors): a path that is not valid percent-encoding
 * (`/%ff`, `/%`), an over-long route parameter. They arrive before any hook, so they are answered here.
 */
export function frameworkErrorHandler(err: { code?: string; message?: string }, req: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-request-id', req.id);
  const path = JSON.stringify(req.raw.url?.slice(0, 200) ?? '');
  const message =
    err.code === 'FST_ERR_BAD_URL'
      ? `Malformed URL ${path}: the path is not valid percent-encoded UTF-8.`
      : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? `URL ${path} has a path segment longer than the limit.`
        : `Bad request for ${path}: ${err.message ?? err.code ?? 'routing failed'}`;
  void sendError(reply, new TokenmillError('invalid_request', message));
}

/**
 * Requests Node's HTTP parser rejects before fastify sees them (raw non-ASCII in the request line,
 * bad header syntax, oversized headers, timeouts): the same envelope, written on the socket.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, label, te] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', new TokenmillError('invalid_request', 'The request was not received in time.')]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', new TokenmillError('request_too_large', 'The request headers are too large.')]
        : [
            400,
            'Bad Request',
            new TokenmillError(
              'invalid_request',
              `Malformed HTTP request (${err.code ?? 'parse error'}): check the request line and headers.`,
            ),
          ];
  // A HEAD answer has no body (the client would read one as garbage after the headers).
  const raw = (err as { rawPacket?: Buffer }).rawPacket;
  const body = raw !== undefined && raw.subarray(0, 5).toString('latin1') === 'HEAD ' ? '' : JSON.stringify(envelope(te));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${label}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; ` +
        `charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(err);
}
