/**
 * The live synthetic sources (subgraphs/synthetic-sources/live.ts): env `LIVE_SOURCES`, the seconds
 * between two deliveries of new and changed rows to the built-in domains' generated raw files, or
 * `off`. In development (`npm start`) they deliver every 60 s by default, so that the mesh shows
 * fresh data, pipeline runs and changes; in production they are off, and asking for them is refused
 * (synthetic rows never reach a production mesh).
 */
export const LIVE_SOURCES_DEFAULT_SECONDS = 60;
/** Deliveries closer than this are refused (the pipelines that merge them run at most this often). */
const SHORTEST_SECONDS = 10;

/** The seconds between deliveries, or null when the live sources are off. */
export function liveSourcesFromEnv(env: NodeJS.ProcessEnv = process.env): number | null {
  const raw = env.LIVE_SOURCES;
  const production = env.NODE_ENV === 'production';
  if (raw === undefined || raw === '') return production ? null : LIVE_SOURCES_DEFAULT_SECONDS;
  if (raw === 'off') return null;
  if (production) throw new Error('LIVE_SOURCES is set: the synthetic live sources are for development and are refused in production; unset it or set it to off.');
  const seconds = Number(raw);
  if (!Number.isInteger(seconds) || seconds < SHORTEST_SECONDS || seconds > 86_400) {
    throw new Error(`LIVE_SOURCES must be off or whole seconds from ${SHORTEST_SECONDS} to 86400, got "${raw.slice(0, 20)}".`);
  }
  return seconds;
}
