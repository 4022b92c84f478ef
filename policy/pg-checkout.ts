/**
 * A PostgreSQL connection checked out of a pool for several queries. The server may drop it between
 * two of them (a restart, a terminated backend): pg then emits `error` on the client itself, which
 * with no listener is an uncaught error that stops the process. Here it is noted, and the broken
 * connection is discarded when it is released instead of going back to the pool.
 */
import type pg from 'pg';

export async function checkOut(pool: pg.Pool): Promise<{ readonly client: pg.PoolClient; release(failure?: Error): void }> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken ??= error;
  };
  client.on('error', onError);
  return {
    client,
    release(failure) {
      client.off('error', onError);
      client.release(failure ?? broken);
    },
  };
}
