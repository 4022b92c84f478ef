/**
 * GraphQL over Server-Sent Events at `/graphql/stream`, in the protocol's "distinct connections"
 * mode (one subscription per request, as graphql-sse's client speaks it: `event: next` with the
 * result, `event: complete`), plus what resuming needs and the graphql-sse handler does not do:
 * each event carries its stream position as the SSE `id:`, and a request that sends
 * `Last-Event-ID` (as EventSource does when it reconnects) resumes after it. The handler also
 * writes only as fast as the subscriber reads (graphql-sse's handler queues without bound).
 *
 * GET (`query` or `documentId`, `variables` and `extensions` as JSON, `operationName` in the URL, for
 * EventSource) or POST (JSON); an app held to trusted documents subscribes by `documentId` only.
 * A refusal before the first event is an HTTP status with the coded JSON error body; a coded end
 * after it is a last `next` holding the error, then `complete`.
 */
import type { Request, RequestHandler, Response } from 'express';
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import type { TokenVerifier } from '../../policy/identity.js';
import { addressOf } from '../request-stages/client-identity.js';
import type { Refuse } from '../request-stages/refusals.js';
import { SubscriptionRefused } from './prepare.js';
import type { Subscriptions } from './subscriptions.js';

export interface SseOptions {
  readonly subscriptions: Subscriptions;
  readonly verifier: TokenVerifier;
  readonly refuse: Refuse;
  readonly log: Logger;
  /** A comment line every this often, so that proxies keep the stream open (default 12 s). */
  readonly keepAliveMs?: number;
  /** How long a subscriber that must be ended may take to read its last message (default 5 s). */
  readonly endGraceMs?: number;
}

function requestOf(req: Request): { query?: unknown; variables?: unknown; operationName?: unknown; documentId?: unknown; extensions?: unknown } | string {
  if (req.method === 'POST') {
    const body: unknown = req.body;
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'A POST body is a JSON object with `query`.';
    return body as Record<string, unknown>;
  }
  const { query, variables, operationName, documentId, extensions } = req.query;
  const json = (name: string, value: unknown): { value?: unknown; problem?: string } => {
    if (value === undefined) return {};
    if (typeof value !== 'string') return { problem: `\`${name}\` is given once, as JSON.` };
    try {
      return { value: JSON.parse(value) };
    } catch {
      return { problem: `\`${name}\` is not JSON.` };
    }
  };
  const parsedVariables = json('variables', variables);
  const parsedExtensions = json('extensions', extensions);
  const problem = parsedVariables.problem ?? parsedExtensions.problem;
  if (problem) return problem;
  return { query, variables: parsedVariables.value, operationName, documentId, extensions: parsedExtensions.value };
}

const message = (event: 'next' | 'complete', data: unknown, id?: string) => `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata:${data === null ? '' : ` ${JSON.stringify(data)}`}\n\n`;

export interface SseEndpoint {
  readonly handler: RequestHandler;
  /**
   * Cuts every open stream (the gateway is stopping): without a `complete`, so that the subscriber
   * reconnects, with its Last-Event-ID, to a gateway that is up.
   */
  close(): void;
}

export function sseEndpoint(options: SseOptions): SseEndpoint {
  const { subscriptions, verifier, refuse, log } = options;
  const open = new Set<Response>();
  let closing = false;
  const handler: RequestHandler = async (req: Request, res: Response) => {
    const request = requestOf(req);
    if (typeof request === 'string') {
      refuse(req, res, { code: 'BAD_REQUEST', message: request });
      return;
    }
    const principal = res.locals.principal!;
    const lastEventId = req.get('last-event-id');
    let ending: ReturnType<typeof setTimeout> | undefined;
    let opened;
    try {
      opened = await subscriptions.subscribe({
        request,
        principal,
        authorization: req.headers.authorization,
        expiresAtMs: verifier.expiresAt(req.headers.authorization),
        address: addressOf(req),
        transport: 'sse',
        ...(lastEventId !== undefined ? { lastEventId } : {}),
        requestId: res.locals.requestId!,
        buffered: () => res.writableLength + (res.socket?.writableLength ?? 0),
        // Told to end while the response may be stuck: it has a moment to take the last message.
        onEnding: () => {
          ending ??= setTimeout(() => res.destroy(), options.endGraceMs ?? 5_000);
          ending.unref();
        },
      });
    } catch (error) {
      if (!(error instanceof SubscriptionRefused)) throw error;
      refuse(req, res, { code: error.code, message: error.message, extensions: error.extensions, headers: error.headers });
      return;
    }
    // The subscriber left while it was being admitted: nothing to stream to.
    if (res.destroyed || !res.socket || res.socket.destroyed) {
      opened.close();
      opened.release('complete');
      return;
    }
    if (closing) {
      opened.close();
      opened.release('complete');
      res.destroy();
      return;
    }
    open.add(res);
    res.once('close', () => open.delete(res));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      // nginx and others: do not buffer the stream.
      'x-accel-buffering': 'no',
    });
    let closed = false;
    const write = (text: string) =>
      new Promise<void>((resolve) => {
        if (closed || !res.writable) return resolve();
        res.write(text, () => resolve());
      });
    const keepAlive = setInterval(() => void write(':\n\n'), options.keepAliveMs ?? 12_000);
    res.once('close', () => {
      closed = true;
      // Ends the loop below now, even while it waits for an event.
      opened.stop();
    });
    await write(':\n\n');
    let code = 'complete';
    try {
      for await (const delivery of opened.deliveries) {
        if (closed) break;
        await write(message('next', delivery.result, delivery.id));
      }
    } catch (error) {
      const coded = error instanceof GraphQLError ? error : null;
      if (!coded) log.error({ err: error, requestId: res.locals.requestId }, 'a subscription failed');
      code = (coded?.extensions.code as string | undefined) ?? 'INTERNAL_SERVER_ERROR';
      const shown = coded ?? new GraphQLError('The subscription failed; the server log has the details under this requestId.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      await write(message('next', { errors: [{ message: shown.message, extensions: { ...shown.extensions, requestId: res.locals.requestId } }] }));
    } finally {
      clearInterval(keepAlive);
      if (ending) clearTimeout(ending);
      opened.close();
      opened.release(closed && code === 'complete' ? 'complete' : code);
    }
    if (!closed) {
      await write(message('complete', null));
      res.end();
    }
  };
  return {
    handler,
    close() {
      closing = true;
      for (const res of open) res.destroy();
    },
  };
}
