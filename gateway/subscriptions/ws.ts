/**
 * GraphQL over WebSocket (the graphql-transport-ws protocol, with `graphql-ws` and `ws`) at
 * `/graphql`, on the gateway's HTTP server. The token comes in `connection_init`'s payload
 * (`{ "authorization": "Bearer …" }`) or the upgrade request's Authorization header; without a
 * valid one the socket is closed with 4401 and the refusal's code in the reason. Each subscribe
 * verifies the token again (an expired one is refused), and is admitted, resolved and bounded as
 * over SSE (subscriptions.ts); a refusal is the protocol's `error` message with the coded errors, a
 * coded end too. Resuming is the `after` argument; every result carries its position in
 * `extensions.position` (as over SSE, where it is also the event's id).
 *
 * Upgrades are refused (403) for a Host or Origin outside ALLOWED_HOSTS, as every HTTP route is.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { GraphQLError, parse, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { foreignHostMessage, foreignHostOf } from '../../policy/host-check.js';
import { TokenRejectedError, type TokenVerifier } from '../../policy/identity.js';
import type { ErrorCode } from '../../policy/errors.js';
import type { Principal } from '../../policy/principal.js';
import type { RefusedRequest } from '../request-stages/refusals.js';
import { SubscriptionRefused } from './prepare.js';
import type { Delivery } from './run.js';
import type { OpenedSubscription, Subscriptions } from './subscriptions.js';

export interface WebSocketOptions {
  readonly httpServer: Server;
  readonly path: string;
  readonly subscriptions: Subscriptions;
  readonly verifier: TokenVerifier;
  readonly allowedHosts: readonly string[] | null;
  readonly log: Logger;
  /** The largest message a client may send, in bytes (the body limit of HTTP requests). */
  readonly maxPayload: number;
  /** How long a subscriber that must be ended may take to read its last message (default 5 s). */
  readonly endGraceMs?: number;
  /** Records a refused token (counted, audited at most 20 a second), as for HTTP routes. */
  readonly tokenRejected: (request: RefusedRequest, error: TokenRejectedError) => void;
  /** Records a refused subscription in the audit trail, as HTTP refusals are. */
  readonly refused: (request: RefusedRequest, code: ErrorCode) => void;
}

type Extra = {
  readonly socket: WebSocket;
  readonly request: IncomingMessage;
  authorization?: string | undefined;
};

const clientNameOf = (request: IncomingMessage) => {
  const header = request.headers['apollographql-client-name'];
  return typeof header === 'string' ? header : undefined;
};

/** The document graphql-ws needs to see a subscription; the real one was prepared already. */
const PREPARED = parse('subscription { __typename }');

/** The subscription as graphql-ws reads it: its results, and a `return` that stops it at once (a generator's would wait for its next event). */
function iterate(opened: OpenedSubscription, log: Logger): AsyncGenerator<ExecutionResult> {
  const deliveries = opened.deliveries;
  let code = 'complete';
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    opened.close();
    opened.release(code);
  };
  const iterator: AsyncGenerator<ExecutionResult> = {
    async next() {
      try {
        const step = await deliveries.next();
        if (step.done) {
          finish();
          return { done: true, value: undefined };
        }
        const delivery: Delivery = step.value;
        return { done: false, value: delivery.result as ExecutionResult };
      } catch (error) {
        const coded = error instanceof GraphQLError ? error : null;
        if (!coded) log.error({ err: error }, 'a subscription failed');
        code = (coded?.extensions.code as string | undefined) ?? 'INTERNAL_SERVER_ERROR';
        finish();
        throw coded ?? new GraphQLError('The subscription failed; the server log has the details.', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      }
    },
    async return() {
      opened.stop();
      finish();
      return { done: true, value: undefined };
    },
    async throw(error: unknown) {
      opened.stop();
      finish();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
    async [Symbol.asyncDispose]() {
      await iterator.return(undefined);
    },
  };
  return iterator;
}

export function attachWebSocket(options: WebSocketOptions): { close(): Promise<void> } {
  const { subscriptions, verifier, log } = options;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload });
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(request.url ?? '/', 'http://gateway').pathname;
    if (path !== options.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const foreign = foreignHostOf(request.headers, options.allowedHosts);
    if (foreign !== null) {
      const body = JSON.stringify({ errors: [{ message: foreignHostMessage(foreign, options.allowedHosts!), extensions: { code: 'HOST_NOT_ALLOWED' } }] });
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  };
  options.httpServer.on('upgrade', onUpgrade);

  /** The principal of the connection's token, verified now (an expired token is refused). */
  const principalOf = async (extra: Extra): Promise<Principal> => {
    const principal = await verifier.verify(extra.authorization);
    if (principal.anonymous) throw new SubscriptionRefused('UNAUTHENTICATED', 'Subscriptions need a signed-in principal: send a bearer token in connection_init\'s `authorization`.');
    return principal;
  };

  const server = useServer<Record<string, unknown> | undefined, Extra>(
    {
      // Over WebSocket the gateway serves subscriptions only (queries and mutations: POST /graphql).
      async onConnect(ctx) {
        const params = ctx.connectionParams ?? {};
        const given = params.authorization ?? params.Authorization;
        ctx.extra.authorization = typeof given === 'string' ? given : ctx.extra.request.headers.authorization;
        try {
          await principalOf(ctx.extra);
          return true;
        } catch (error) {
          const refusedRequest = { principal: undefined, requestId: randomUUID(), clientName: clientNameOf(ctx.extra.request), operation: {} };
          if (error instanceof TokenRejectedError) options.tokenRejected(refusedRequest, error);
          if (error instanceof SubscriptionRefused) options.refused(refusedRequest, error.code);
          const code = error instanceof SubscriptionRefused ? error.code : 'UNAUTHENTICATED';
          const reason = error instanceof TokenRejectedError ? error.reason : error instanceof SubscriptionRefused ? 'MISSING_TOKEN' : 'INVALID_TOKEN';
          if (!(error instanceof TokenRejectedError) && !(error instanceof SubscriptionRefused)) log.error({ err: error }, 'a WebSocket token could not be verified');
          // A close reason is at most 123 bytes: the code and the token's reason.
          ctx.extra.socket.close(CloseCode.Unauthorized, `${code}: ${reason}`.slice(0, 120));
          return false;
        }
      },
      async onSubscribe(ctx, _id, payload) {
        const requestId = randomUUID();
        let principal: Principal;
        try {
          principal = await principalOf(ctx.extra);
        } catch (error) {
          if (error instanceof TokenRejectedError) options.tokenRejected({ principal: undefined, requestId, clientName: clientNameOf(ctx.extra.request), operation: payload }, error);
          const message = error instanceof TokenRejectedError ? `Token refused: ${error.message}` : (error as Error).message;
          return [new GraphQLError(message, { extensions: { code: 'UNAUTHENTICATED', requestId, ...(error instanceof TokenRejectedError ? { reason: error.reason } : {}) } })];
        }
        const socket = ctx.extra.socket;
        let ending: ReturnType<typeof setTimeout> | undefined;
        try {
          const opened = await subscriptions.subscribe({
            request: payload,
            principal,
            authorization: ctx.extra.authorization,
            expiresAtMs: verifier.expiresAt(ctx.extra.authorization),
            address: `ip:${ctx.extra.request.socket.remoteAddress ?? 'unknown'}`,
            transport: 'ws',
            requestId,
            buffered: () => socket.bufferedAmount,
            onEnding: () => {
              // Told to end while the socket may be stuck: it has a moment to drain, else it is cut.
              ending ??= setTimeout(() => {
                if (socket.bufferedAmount > 0) socket.terminate();
              }, options.endGraceMs ?? 5_000);
              ending.unref();
            },
          });
          const args: ExecutionArgs & { contextValue: { subscription: AsyncGenerator<ExecutionResult> } } = {
            schema: undefined as never,
            document: PREPARED,
            contextValue: { subscription: iterate(opened, log) },
          };
          return args;
        } catch (error) {
          if (error instanceof SubscriptionRefused) options.refused({ principal, requestId, clientName: clientNameOf(ctx.extra.request), operation: payload }, error.code);
          if (error instanceof SubscriptionRefused) return error.graphqlErrors().map((e) => new GraphQLError(e.message, { extensions: { ...e.extensions, requestId } }));
          throw error;
        }
      },
      subscribe: (args) => (args.contextValue as { subscription: AsyncGenerator<ExecutionResult> }).subscription,
      execute: () => ({ errors: [new GraphQLError('Over WebSocket this gateway serves subscriptions; send queries and mutations to POST /graphql.', { extensions: { code: 'SUBSCRIPTION_INVALID' } })] }),
      // Our results are formatted already (the lookup's JSON): sent as they are.
      onNext: (_ctx, _id, _payload, _args, result) => result as never,
    },
    wss,
  );
  return {
    async close() {
      options.httpServer.off('upgrade', onUpgrade);
      await server.dispose();
    },
  };
}
