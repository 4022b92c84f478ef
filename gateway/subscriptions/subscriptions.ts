/**
 * GraphQL subscriptions through the gateway (issue 27). Apollo Gateway plans subscriptions but does
 * not execute them; this is the gateway's own path beside it, for both transports (sse.ts: GraphQL
 * over SSE at `/graphql/stream`; ws.ts: graphql-ws at `/graphql`):
 *
 *   token (signed in) → trusted documents → subscriptions per subject and per client → prepare (limits, validation,
 *   policy on the field, the lookup and its cost) → open (the product's feed, `after`) → for each
 *   key of each event: cost spent, the lookup run through Apollo Server as the subscriber (pre-plan
 *   policy, field policy, masks, row policy, audit), delivered if visible and matching
 *
 * `/metrics` counts open subscriptions (by transport), keys delivered and withheld, and ends by code.
 */
import { HeaderMap, type ApolloServer } from '@apollo/server';
import type { RequestHandler } from 'express';
import type { FormattedExecutionResult, GraphQLError } from 'graphql';
import pLimit from 'p-limit';
import { Counter, Gauge } from 'prom-client';
import type { Logger } from 'pino';
import { ChangeFeedError, type StoredChange } from '../../policy/events/change-feed.js';
import type { Metrics } from '../../policy/metrics.js';
import { policyClassOf, type Principal } from '../../policy/principal.js';
import type { ProductHub } from '../events/product-hub.js';
import type { AllowanceOf } from '../request-stages/allowances.js';
import type { Refusal, Refuse } from '../request-stages/refusals.js';
import { resolveTrustedDocument, type TrustedDocuments } from '../request-stages/trusted-documents.js';
import type { ServedSchema } from '../supergraph/serving-supergraph.js';
import { prepareSubscription, SubscriptionRefused } from './prepare.js';
import { DEFAULT_SUBSCRIPTION_BOUNDS, openSubscription, type SubscriptionBounds, type SubscriptionStream } from './run.js';

export type Transport = 'sse' | 'ws';

/** What the subscriptions need of the gateway's request context (gateway/server.ts's GatewayContext). */
export interface EventContext {
  subscriptionEvent?: { readonly field: string; readonly position: string };
}

export interface SubscriptionsOptions<C extends EventContext> {
  /** The gateway's reader of the change feeds; null when the gateway has no change feed. */
  readonly hub: ProductHub | null;
  readonly served: () => ServedSchema | undefined;
  readonly apollo: () => ApolloServer<C> | undefined;
  /** The context of one lookup, as for a query by this principal. */
  readonly contextOf: (requestId: string, principal: Principal, authorization: string | undefined, clientName: string | null, estimatedCost: number) => C;
  readonly allowanceOf: AllowanceOf;
  /**
   * Settles once the response cache can no longer hold an answer older than this event (its versions
   * polled after the event came); absent without a cache. Lookups then share cached answers, within
   * a policy class, as queries do.
   */
  readonly fresh?: (change: StoredChange) => Promise<void>;
  /** Spends a cost from the principal's rate buckets (the address names an anonymous caller). */
  readonly spend: (principal: Principal, address: string, cost: number) => Promise<Refusal | null>;
  readonly policyMode: 'filter' | 'reject';
  /** The registered documents: an app held to them subscribes by `documentId` only, as it queries. */
  readonly trusted: () => TrustedDocuments;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly bounds?: Partial<SubscriptionBounds>;
  /** The processes that count subscriptions apart (a cluster's workers): each admits its share. */
  readonly localShares?: number;
  /** Lookups run at once, at most, whatever the subscribers (default 32): a burst waits, subgraphs are not flooded. */
  readonly maxConcurrentLookups?: number;
}

export interface SubscribeRequest {
  readonly request: { readonly query?: unknown; readonly variables?: unknown; readonly operationName?: unknown; readonly documentId?: unknown; readonly extensions?: unknown };
  readonly principal: Principal;
  readonly authorization: string | undefined;
  /** When the token stops being valid (ms since the epoch). */
  readonly expiresAtMs: number | null;
  readonly address: string;
  readonly transport: Transport;
  /** A position to resume after, from the transport (SSE `Last-Event-ID`); `after` in the operation wins. */
  readonly lastEventId?: string | undefined;
  readonly requestId: string;
  /** Bytes the transport holds unsent for this subscriber. */
  readonly buffered: () => number;
  readonly onEnding?: (error: GraphQLError) => void;
}

export interface OpenedSubscription extends SubscriptionStream {
  /** Counts the subscription as ended (with its code), once. */
  release(code: string): void;
}

export interface Subscriptions {
  /** Opens a subscription, or throws SubscriptionRefused (before any event). */
  subscribe(request: SubscribeRequest): Promise<OpenedSubscription>;
}

export function createSubscriptions<C extends EventContext>(options: SubscriptionsOptions<C>): Subscriptions {
  const { metrics, log } = options;
  const bounds: SubscriptionBounds = { ...DEFAULT_SUBSCRIPTION_BOUNDS, ...options.bounds };
  const registers = [metrics.registry];
  const subscribers = new Gauge({ name: 'mesh_subscriptions', help: 'Open subscriptions, by transport.', labelNames: ['transport'], registers });
  const events = new Counter({ name: 'mesh_subscription_events_total', help: 'Changed entities for subscribers: delivered, withheld (the subscriber may not see it, or its filter does not keep it), or dropped (still waiting when the subscription ended with a code; the subscriber resumes to get them).', labelNames: ['outcome'], registers });
  const ended = new Counter({ name: 'mesh_subscriptions_ended_total', help: 'Subscriptions ended, by code (complete: the subscriber left; others: the coded end it was sent).', labelNames: ['code'], registers });
  const refused = new Counter({ name: 'mesh_subscriptions_refused_total', help: 'Subscriptions refused before their first event, by code.', labelNames: ['code'], registers });
  // A burst of events for many subscribers queues here rather than at the subgraphs.
  const lookupSlots = pLimit(options.maxConcurrentLookups ?? 32);
  // The first lookup of a key for a policy class leads; the others of that class wait for it and are
  // then answered by the response cache (each still its own audited operation), not by the subgraphs.
  const leaders = new Map<string, Promise<unknown>>();
  const bySubject = new Map<string, number>();
  const byClient = new Map<string, number>();
  const shares = options.localShares ?? 1;
  const count = (map: Map<string, number>, key: string, delta: number) => {
    const next = (map.get(key) ?? 0) + delta;
    if (next <= 0) map.delete(key);
    else map.set(key, next);
  };

  return {
    async subscribe(request) {
      const { principal } = request;
      try {
        const served = options.served();
        const apollo = options.apollo();
        if (!served || !apollo) throw new SubscriptionRefused('GATEWAY_NOT_READY', 'The gateway is not ready; subscribe again shortly.');
        if (!options.hub) throw new SubscriptionRefused('EVENTS_UNAVAILABLE', 'This gateway follows no change feed (EVENTS_NATS_URL, or the data folder of the embedded one): it serves no subscriptions.');
        const allowance = options.allowanceOf(principal);
        const document = resolveTrustedDocument(request.request, principal, options.trusted());
        if ('refusal' in document) throw new SubscriptionRefused(document.refusal.code, document.refusal.message);
        const prepared = prepareSubscription({
          request: document.text === null ? request.request : { ...request.request, query: document.text },
          principal,
          allowance,
          served,
          policyMode: options.policyMode,
          ...(request.lastEventId !== undefined ? { lastEventId: request.lastEventId } : {}),
        });
        // Admitted as a query is: its cost (one event's) spent from the rate buckets.
        const overRate = await options.spend(principal, request.address, prepared.cost);
        if (overRate) throw new SubscriptionRefused(overRate.code, overRate.message, overRate.extensions ?? {}, [], overRate.headers ?? {});
        // Bounds per subject and per verified client, each process its share of them.
        const subject = `sub:${principal.subject ?? request.address}`;
        const subjectLimit = Math.max(1, Math.floor(allowance.maxSubscriptions / shares));
        if ((bySubject.get(subject) ?? 0) >= subjectLimit) {
          throw new SubscriptionRefused('SUBSCRIPTION_LIMIT', `"${principal.subject}" has ${subjectLimit} subscriptions open, as many as it may: end one first.`, { limit: subjectLimit, bucket: 'subject' });
        }
        const clientLimit = Math.max(1, Math.floor(allowance.maxClientSubscriptions / shares));
        if (principal.client && (byClient.get(principal.client) ?? 0) >= clientLimit) {
          throw new SubscriptionRefused('SUBSCRIPTION_LIMIT', `The client "${principal.client}" has ${clientLimit} subscriptions open, as many as it may: end one first.`, { limit: clientLimit, bucket: 'client' });
        }
        count(bySubject, subject, 1);
        if (principal.client) count(byClient, principal.client, 1);
        let released = false;
        // Once; null: it never started (refused while opening, counted as refused).
        const release = (code: string | null) => {
          if (released) return;
          released = true;
          count(bySubject, subject, -1);
          if (principal.client) count(byClient, principal.client, -1);
          subscribers.dec({ transport: request.transport });
          if (code !== null) ended.inc({ code });
        };
        subscribers.inc({ transport: request.transport });
        const rowPolicy = served.policy.rowPolicy(prepared.route.entityType.name);
        // One key's lookup, as a query by the subscriber: through Apollo Server (a reload's new one, if any).
        const lookup = async (variables: Record<string, unknown>, position: string): Promise<FormattedExecutionResult> => {
          const server = options.apollo() ?? apollo;
          const context = options.contextOf(`${request.requestId}:${position}`, principal, request.authorization, principal.client, prepared.cost);
          context.subscriptionEvent = { field: prepared.route.field, position };
          // The response cache may answer: `fresh` waited until it knows the version the event is about.
          const response = await server.executeOperation(
            { query: prepared.lookup.query, operationName: prepared.lookup.operationName, variables, http: { method: 'POST', headers: new HeaderMap(), search: '', body: null } },
            { contextValue: context },
          );
          if (response.body.kind !== 'single') return { errors: [{ message: 'The event could not be resolved.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] };
          return response.body.singleResult;
        };
        let stream: SubscriptionStream;
        try {
          stream = await openSubscription({
            prepared,
            hub: options.hub,
            seesEveryRow: !rowPolicy || principal.roles.some((role) => rowPolicy.bypassRoles.includes(role)),
            bounds: { ...bounds, eventsPerSecond: allowance.subscriptionEventsPerSecond },
            expiresAtMs: request.expiresAtMs,
            buffered: request.buffered,
            ...(request.onEnding ? { onEnding: request.onEnding } : {}),
            onOutcome: (outcome, count = 1) => events.inc({ outcome }, count),
            ...(options.fresh ? { fresh: options.fresh } : {}),
            spend: async (cost) => {
              const refusal = await options.spend(principal, request.address, cost);
              if (!refusal) metrics.estimatedCost.inc({ client: metrics.clientLabel(principal.client) }, cost);
              return refusal;
            },
            resolve: async (variables, position): Promise<FormattedExecutionResult> => {
              const shared = `${policyClassOf(principal)}\n${position}\n${prepared.lookup.query}\n${JSON.stringify(variables)}`;
              const leader = leaders.get(shared);
              // After a leader that answered, the cache answers: no slot needed (nor taken from the subgraphs' share).
              if (leader && (await leader.then((result) => !(result as FormattedExecutionResult).errors?.length, () => false))) return lookup(variables, position);
              const run = lookupSlots(() => lookup(variables, position));
              if (!leader && options.fresh) {
                leaders.set(shared, run);
                void run.finally(() => leaders.delete(shared)).catch(() => undefined);
              }
              return run;
            },
          });
        } catch (error) {
          release(null);
          throw error;
        }
        return { ...stream, release };
      } catch (error) {
        const refusal = error instanceof SubscriptionRefused ? error : error instanceof ChangeFeedError ? new SubscriptionRefused(error.code, error.message) : null;
        if (!refusal) throw error;
        refused.inc({ code: refusal.code });
        log.info({ requestId: request.requestId, code: refusal.code, subject: principal.subject }, 'subscription refused');
        throw refusal;
      }
    },
  };
}

/**
 * After the operation limits (which parsed the document): a subscription sent to `/graphql` is
 * refused with the endpoints that serve it (Apollo Gateway would plan it, then fail).
 */
export function refuseSubscriptionsOverHttp(refuse: Refuse): RequestHandler {
  return (req, res, next) => {
    if (res.locals.parsedOperation?.operation.operation !== 'subscription') return next();
    refuse(req, res, { code: 'SUBSCRIPTION_INVALID', message: 'Subscriptions are served over SSE at /graphql/stream and over WebSocket at /graphql (graphql-transport-ws), not by a POST or GET of /graphql.' });
  };
}
