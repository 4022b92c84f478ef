/**
 * `npm run token -- --role analyst --region EMEA [--scope read:customers] [--purpose analytics]
 *  [--sub alice] [--client crm-app] [--hours 8]`: prints a development token of the local issuer.
 */
import { parseArgs } from 'node:util';
import { mintDevToken } from './identity-config.js';

const { values } = parseArgs({
  options: {
    role: { type: 'string', multiple: true, default: [] },
    scope: { type: 'string', multiple: true, default: [] },
    region: { type: 'string', multiple: true, default: [] },
    purpose: { type: 'string' },
    sub: { type: 'string', default: 'dev-user' },
    client: { type: 'string' },
    hours: { type: 'string', default: '8' },
  },
});

const hours = Number(values.hours);
if (!(hours > 0 && hours <= 24 * 30)) {
  console.error('--hours must be between 0 and 720.');
  process.exit(2);
}
console.log(
  mintDevToken({
    subject: values.sub,
    roles: values.role,
    scopes: values.scope,
    regions: values.region,
    ...(values.purpose ? { purpose: values.purpose } : {}),
    ...(values.client ? { client: values.client } : {}),
    expiresInSeconds: Math.round(hours * 3600),
  }),
);
