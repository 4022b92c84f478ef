/**
 * Subscribers as apps are: over GraphQL over SSE (fetch, the stream read with eventsource-parser, so
 * that the test sees each event's `id:` as EventSource would) and over WebSocket (graphql-ws's own
 * client on `ws`).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

export interface StreamEvent {
  readonly id: string | undefined;
  readonly event: string | undefined;
  readonly data: any;
}

export interface SseSubscriber {
  readonly status: number;
  /** The refusal's body when `status` is not 200. */
  readonly refusal: any;
  readonly events: StreamEvent[];
  /** Settles when the server ends the stream. */
  readonly ended: Promise<void>;
  close(): void;
}

/** Subscribes over SSE; `lastEventId` resumes as EventSource does when it reconnects. */
export async function subscribeSse(url: string, options: { query?: string; documentId?: string; variables?: Record<string, unknown>; authorization?: string | null; lastEventId?: string; method?: 'GET' | 'POST' }): Promise<SseSubscriber> {
  const controller = new AbortController();
  const headers: Record<string, string> = { accept: 'text/event-stream' };
  if (options.authorization) headers.authorization = options.authorization;
  if (options.lastEventId !== undefined) headers['last-event-id'] = options.lastEventId;
  const streamUrl = new URL(url.replace(/\/graphql$/, '/graphql/stream'));
  let body: string | undefined;
  if (options.method === 'GET') {
    if (options.query !== undefined) streamUrl.searchParams.set('query', options.query);
    if (options.documentId !== undefined) streamUrl.searchParams.set('documentId', options.documentId);
    if (options.variables) streamUrl.searchParams.set('variables', JSON.stringify(options.variables));
  } else {
    headers['content-type'] = 'application/json';
    body = JSON.stringify({ query: options.query, documentId: options.documentId, variables: options.variables ?? {} });
  }
  const response = await fetch(streamUrl, { method: options.method ?? 'POST', headers, body, signal: controller.signal });
  const events: StreamEvent[] = [];
  if (response.status !== 200 || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
    return { status: response.status, refusal: await response.json(), events, ended: Promise.resolve(), close: () => controller.abort() };
  }
  const parser = createParser({
    onEvent: (message: EventSourceMessage) => events.push({ id: message.id, event: message.event, data: message.data ? JSON.parse(message.data) : null }),
  });
  const ended = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) parser.feed(decoder.decode(chunk, { stream: true }));
    } catch {
      // aborted by the test, or cut by the server
    }
  })();
  return { status: 200, refusal: null, events, ended, close: () => controller.abort() };
}

/** The `next` results of an SSE stream (the events that carry data). */
export const nextsOf = (subscriber: SseSubscriber) => subscriber.events.filter((event) => event.event === 'next').map((event) => event.data);

export interface WsSubscription {
  readonly results: any[];
  /** The protocol's `error` (a refusal or a coded end), if any. */
  error: unknown;
  completed: boolean;
  /** Settles at completion or error. */
  readonly done: Promise<void>;
  unsubscribe(): void;
}

/** A graphql-ws client on the gateway's `/graphql`, with the token in connection_init. */
export function wsClient(url: string, authorization: string | null, options: { onClosed?: (event: { code: number; reason: string }) => void } = {}): Client {
  return createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: authorization ? { authorization } : {},
    retryAttempts: 0,
    lazy: true,
    on: { closed: (event) => options.onClosed?.(event as { code: number; reason: string }) },
  });
}

export function subscribeWs(client: Client, query: string, variables: Record<string, unknown> = {}): WsSubscription {
  let settle!: () => void;
  const subscription: WsSubscription = {
    results: [],
    error: undefined,
    completed: false,
    done: new Promise<void>((resolve) => (settle = resolve)),
    unsubscribe: () => undefined,
  };
  (subscription as { unsubscribe: () => void }).unsubscribe = client.subscribe(
    { query, variables },
    {
      next: (result) => void subscription.results.push(result),
      error: (error) => {
        subscription.error = error;
        settle();
      },
      complete: () => {
        subscription.completed = true;
        settle();
      },
    },
  );
  return subscription;
}
