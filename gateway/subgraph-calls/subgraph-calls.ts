/**
 * How the gateway's HTTP calls to subgraphs survive subgraphs that hang, die, restart, close idle
 * sockets or slow down.
 *
 * - One undici connection pool whose idle sockets are dropped after `idleSocketMs` (4 s), below the
 *   subgraphs' own keep-alive (10 s, set in the subgraph bootstrap; Node's default is 5 s), so that
 *   the gateway does not write to a socket the subgraph has closed.
 * - A fetch timeout per subgraph (`SUBGRAPH_TIMEOUT`), after which that subgraph's fields are null
 *   and the rest of the answer is served.
 * - One retry when a connection is reset before an answer, for queries only: a mutation may have
 *   taken effect, so it is never sent twice.
 * - A circuit breaker per subgraph (opossum): when at least half of the calls in a 10 s window
 *   fail (and there were at least `circuitVolume` of them), calls fail at once for `coolDownMs`;
 *   then one call probes, and its success closes the circuit.
 * - A response budget per operation: the bytes all subgraphs answered are counted as they arrive,
 *   and a call that would pass the budget is stopped (`RESPONSE_TOO_LARGE`) instead of read.
 */
import { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import { Agent, request } from 'undici';
import type { Logger } from 'pino';
import { codedError } from '../../policy/errors.js';
import type { Metrics } from '../../policy/metrics.js';

export interface SubgraphCallsConfig {
  /** Fetch timeout of every subgraph, in ms (env `SUBGRAPH_TIMEOUT_MS`, default 5000). */
  readonly timeoutMs: number;
  /** Per-subgraph timeouts, in ms (env `SUBGRAPH_TIMEOUTS`, e.g. `finance=15000,customers=3000`). */
  readonly timeouts: Readonly<Record<string, number>>;
  /** How long an idle socket to a subgraph is kept (env `SUBGRAPH_IDLE_SOCKET_MS`, default 4000). */
  readonly idleSocketMs: number;
  /** Calls in the 10 s window before the circuit may open (env `CIRCUIT_VOLUME`, default 5). */
  readonly circuitVolume: number;
  /** How long an open circuit fails fast before it probes, in ms (env `CIRCUIT_COOL_DOWN_MS`, default 5000). */
  readonly coolDownMs: number;
  /** Bytes the subgraphs may answer to one operation (env `MAX_RESPONSE_BYTES`, default 20 MB). */
  readonly maxResponseBytes: number;
}

export const DEFAULT_SUBGRAPH_CALLS: SubgraphCallsConfig = {
  timeoutMs: 5_000,
  timeouts: {},
  idleSocketMs: 4_000,
  circuitVolume: 5,
  coolDownMs: 5_000,
  maxResponseBytes: 20 * 1024 * 1024,
};

export type CircuitState = 'closed' | 'open' | 'half-open';

/** What one operation may still receive from its subgraphs, in bytes. */
export interface ResponseBudget {
  remaining: number;
}

export interface SubgraphAnswer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly text: string;
}

export interface SubgraphCall {
  readonly body: string;
  readonly headers: Record<string, string>;
  /** Queries are retried once on a reset connection; mutations never. */
  readonly retryable: boolean;
  readonly budget: ResponseBudget | undefined;
}

export interface SubgraphCaller {
  call(call: SubgraphCall): Promise<SubgraphAnswer>;
}

export interface SubgraphCalls {
  forSubgraph(name: string, url: string): SubgraphCaller;
  /** The circuit of each subgraph called so far. */
  circuits(): Record<string, CircuitState>;
  close(): Promise<void>;
}

/** Errors that mean the connection died under the request, before any answer came back. */
const RESET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED']);

function isReset(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code !== undefined && RESET_CODES.has(code);
}

/** Errors that say nothing about the subgraph's health: they do not count against its circuit. */
class NotASubgraphFailure extends Error {
  constructor(readonly refusal: Error) {
    super(refusal.message);
  }
}

class ServerError extends Error {
  constructor(readonly answer: SubgraphAnswer) {
    super(`HTTP ${answer.status}`);
  }
}

export function createSubgraphCalls(options: { readonly config: SubgraphCallsConfig; readonly metrics: Metrics; readonly log: Logger }): SubgraphCalls {
  const { config, metrics, log } = options;
  const agent = new Agent({ keepAliveTimeout: config.idleSocketMs, keepAliveMaxTimeout: config.idleSocketMs, connect: { timeout: Math.min(config.timeoutMs, 3_000) } });
  const breakers = new Map<string, CircuitBreaker<[SubgraphCall, string], SubgraphAnswer>>();

  const stateOf = (breaker: CircuitBreaker): CircuitState => (breaker.opened ? 'open' : breaker.halfOpen ? 'half-open' : 'closed');

  async function once(url: string, timeoutMs: number, call: SubgraphCall): Promise<SubgraphAnswer> {
    // undici takes an event emitter as the abort signal: far cheaper per call than an AbortController.
    const abort = new EventEmitter();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.emit('abort');
    }, timeoutMs);
    try {
      const response = await request(url, { method: 'POST', headers: call.headers, body: call.body, dispatcher: agent, signal: abort });
      const chunks: Buffer[] = [];
      let bytes = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (call.budget && bytes > call.budget.remaining) {
          response.body.destroy();
          call.budget.remaining = 0;
          throw new NotASubgraphFailure(codedError('RESPONSE_TOO_LARGE', 'The answer to this operation is larger than the gateway assembles; ask for smaller pages or fewer fields.'));
        }
        chunks.push(chunk);
      }
      if (call.budget) call.budget.remaining -= bytes;
      const contentType = response.headers['content-type'];
      return { status: response.statusCode, contentType: Array.isArray(contentType) ? contentType[0] : contentType, text: Buffer.concat(chunks).toString('utf8') };
    } catch (error) {
      if (timedOut) throw Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'SUBGRAPH_TIMEOUT' });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    forSubgraph(name, url) {
      let breaker = breakers.get(name);
      const timeoutMs = config.timeouts[name] ?? config.timeoutMs;
      if (!breaker) {
        breaker = new CircuitBreaker(
          async (call: SubgraphCall, at: string) => {
            let answer: SubgraphAnswer;
            try {
              answer = await once(at, timeoutMs, call);
            } catch (error) {
              if (!call.retryable || !isReset(error)) throw error;
              // The subgraph closed a pooled socket as it was reused: the request never reached it.
              metrics.subgraphRetries.inc({ subgraph: name });
              log.warn({ subgraph: name, err: error }, 'connection reset before an answer; retrying the query once');
              answer = await once(at, timeoutMs, call);
            }
            // A server error counts against the circuit; the answer still reaches the data source.
            if (answer.status >= 500) throw new ServerError(answer);
            return answer;
          },
          {
            name,
            timeout: false,
            errorThresholdPercentage: 50,
            volumeThreshold: config.circuitVolume,
            rollingCountTimeout: 10_000,
            resetTimeout: config.coolDownMs,
            errorFilter: (error: unknown) => error instanceof NotASubgraphFailure,
          },
        );
        breaker.on('open', () => {
          metrics.subgraphCircuit.set({ subgraph: name }, 2);
          log.error({ subgraph: name, coolDownMs: config.coolDownMs }, 'circuit opened: calls to this subgraph fail fast until a probe succeeds');
        });
        breaker.on('halfOpen', () => {
          metrics.subgraphCircuit.set({ subgraph: name }, 1);
          log.info({ subgraph: name }, 'circuit half-open: the next call probes the subgraph');
        });
        breaker.on('close', () => {
          metrics.subgraphCircuit.set({ subgraph: name }, 0);
          log.info({ subgraph: name }, 'circuit closed: the subgraph answers again');
        });
        metrics.subgraphCircuit.set({ subgraph: name }, 0);
        breakers.set(name, breaker);
      }
      const circuit = breaker;
      return {
        async call(call) {
          try {
            return await circuit.fire(call, url);
          } catch (error) {
            if (error instanceof NotASubgraphFailure) throw error.refusal;
            if (error instanceof ServerError) return error.answer;
            if ((error as { code?: string }).code === 'EOPENBREAKER') {
              throw codedError('SUBGRAPH_UNAVAILABLE', `The ${name} subgraph is failing; the gateway stopped calling it for a few seconds (circuit open).`, { serviceName: name, circuit: 'open' });
            }
            if ((error as { code?: string }).code === 'SUBGRAPH_TIMEOUT') {
              throw codedError('SUBGRAPH_TIMEOUT', `The ${name} subgraph did not answer within ${timeoutMs} ms.`, { serviceName: name });
            }
            throw error;
          }
        },
      };
    },
    circuits() {
      return Object.fromEntries([...breakers].map(([name, breaker]) => [name, stateOf(breaker)]));
    },
    async close() {
      for (const breaker of breakers.values()) breaker.shutdown();
      await agent.close();
    },
  };
}

