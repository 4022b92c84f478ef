/**
 * The Apollo Server plugins that write the audit records: one per operation in each subgraph (the
 * facts counted while its fields resolved), and one per operation at the gateway.
 *
 * Strict mode: when an operation resolved values at or above the strict level (RESTRICTED by
 * default), its record is written durably (fsync) before the response leaves; if that fails, those
 * values are withheld (null, with an AUDIT_UNAVAILABLE error): fail closed. The record itself is
 * kept by the sink and written with the next one, so nothing is lost once the sink recovers.
 *
 * An answer that held strict values says so (`extensions.strictAudit: true`), so that no later copy
 * of it (the gateway's response cache) is ever served without the subgraph writing its record again.
 */
import type { ApolloServerPlugin } from '@apollo/server';
import { codedError } from './errors.js';
import type { ErrorLog } from './error-masking.js';
import { boundedName, hashOf, type AuditCollector, type AuditSink } from './audit.js';
import type { Principal } from './principal.js';

/** The response extension by which a subgraph says its answer held strictly audited values. */
export const STRICT_AUDIT_EXTENSION = 'strictAudit';

export interface SubgraphAuditContext {
  readonly requestId: string;
  readonly principal: Principal;
  readonly audit: AuditCollector;
}

function setNull(data: Record<string, unknown>, path: readonly (string | number)[]): void {
  let holder: Record<string | number, unknown> | undefined = data;
  for (const key of path.slice(0, -1)) {
    const next: unknown = holder?.[key];
    if (next === null || typeof next !== 'object') return;
    holder = next as Record<string | number, unknown>;
  }
  if (holder && path.length > 0) holder[path.at(-1)!] = null;
}

export function useSubgraphAudit(options: { sink: AuditSink; service: string; log: ErrorLog }): ApolloServerPlugin<SubgraphAuditContext> {
  const { sink, service, log } = options;
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, response, operationName }) {
          const { audit, principal, requestId } = contextValue;
          const strict = audit.strictPaths.length > 0;
          if (strict && response.body.kind === 'single') {
            response.body.singleResult.extensions = { ...response.body.singleResult.extensions, [STRICT_AUDIT_EXTENSION]: true };
          }
          try {
            await sink.append(
              {
                kind: 'subgraph-operation',
                service,
                requestId,
                at: new Date().toISOString(),
                subject: boundedName(principal.subject),
                roles: principal.roles.map((role) => boundedName(role)!),
                purpose: boundedName(principal.purpose),
                operationName: boundedName(operationName),
                strict,
                facts: audit.facts(),
              },
              { durable: strict },
            );
          } catch (error) {
            log.error({ service, requestId, err: error, pending: sink.pending, failures: sink.failures }, 'audit record not written yet');
            if (!strict || response.body.kind !== 'single') return;
            // Fail closed: strict data does not leave without its record.
            const result = response.body.singleResult;
            const errors = [...(result.errors ?? [])];
            for (const path of audit.strictPaths) {
              if (result.data) setNull(result.data as Record<string, unknown>, path);
              const withheld = codedError('AUDIT_UNAVAILABLE', 'This value is withheld: its audit record could not be written. Retry later.');
              errors.push({ message: withheld.message, path: [...path], extensions: { ...withheld.extensions, requestId } });
            }
            result.errors = errors;
          }
        },
      };
    },
  };
}

export interface GatewayAuditContext {
  readonly requestId: string;
  readonly principal: Principal;
  /** The response cache's verdict, when it is on. */
  readonly cache?: { readonly outcome: string };
  /** The subscription event the operation resolved, if it did. */
  readonly subscriptionEvent?: { readonly field: string; readonly position: string };
}

export function useGatewayAudit(options: { sink: AuditSink; log: ErrorLog }): ApolloServerPlugin<GatewayAuditContext> {
  const { sink, log } = options;
  return {
    async requestDidStart({ request }) {
      const started = performance.now();
      return {
        async willSendResponse({ contextValue, response, operationName, queryHash }) {
          const result = response.body.kind === 'single' ? response.body.singleResult : undefined;
          const failed = Boolean(result?.errors?.length);
          const hasData = result?.data !== undefined && result?.data !== null;
          try {
            await sink.append({
              kind: 'gateway-operation',
              service: 'gateway',
              requestId: contextValue.requestId,
              at: new Date().toISOString(),
              subject: boundedName(contextValue.principal.subject),
              roles: contextValue.principal.roles.map((role) => boundedName(role)!),
              purpose: boundedName(contextValue.principal.purpose),
              // Client-chosen: bounded, so that no header or body can bloat the audit log.
              clientName: boundedName(request.http?.headers.get('apollographql-client-name')),
              operationName: boundedName(operationName ?? request.operationName),
              // Apollo Server hashed the document already: SHA-256 of its text, as hashOf does (a
              // persisted query's id never reaches it: trusted documents are resolved to their text before).
              documentHash: queryHash ?? hashOf(request.query),
              variablesHash: hashOf(request.variables),
              outcome: !failed ? 'success' : hasData ? 'partial' : 'error',
              ...(contextValue.cache?.outcome === 'hit' ? { cache: 'hit' as const } : {}),
              ...(contextValue.subscriptionEvent ? { subscriptionEvent: contextValue.subscriptionEvent } : {}),
              durationMs: Math.round((performance.now() - started) * 1000) / 1000,
            });
          } catch (error) {
            log.error({ service: 'gateway', requestId: contextValue.requestId, err: error, pending: sink.pending }, 'audit record not written yet');
          }
        },
      };
    },
  };
}
