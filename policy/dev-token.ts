/**
 * `npm run token -- --role analyst --region EMEA [--scope read:customers] [--purpose analytics]
 *  [--sub alice] [--client crm-app] [--hours 8]`: prints a development token of the local issuer.
 * Unknown options, roles, regions or purposes are refused with the ones that exist (exit code 2);
 * in production it mints nothing.
 */
import { parseArgs } from 'node:util';
import { governanceRules } from './governance.rules.js';
import { DEV_REGIONS, DEV_ROLES, mintDevToken } from './identity-config.js';

const purposes = [...new Set(Object.values(governanceRules.levels).flatMap((level) => level.purposes ?? []))];
const USAGE = `Usage: npm run -s token -- --role <role> [--role …] [--region <region> …] [--purpose <purpose>]
                          [--scope <scope> …] [--sub <subject>] [--client <app>] [--hours <1-720>]
Roles: ${DEV_ROLES.join(', ')}. Regions: ${DEV_REGIONS.join(', ')}. Purposes: ${purposes.join(', ')}.
Prints a token of the local-development issuer (refused in production).`;

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      role: { type: 'string', multiple: true, default: [] },
      scope: { type: 'string', multiple: true, default: [] },
      region: { type: 'string', multiple: true, default: [] },
      purpose: { type: 'string' },
      sub: { type: 'string', default: 'dev-user' },
      client: { type: 'string' },
      hours: { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }));
} catch (error) {
  fail((error as Error).message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const unknownRoles = values.role.filter((role) => !(DEV_ROLES as readonly string[]).includes(role));
if (unknownRoles.length > 0) fail(`Unknown role ${unknownRoles.map((r) => `"${r}"`).join(', ')}.`);
const unknownRegions = values.region.filter((region) => !(DEV_REGIONS as readonly string[]).includes(region));
if (unknownRegions.length > 0) fail(`Unknown region ${unknownRegions.map((r) => `"${r}"`).join(', ')}: regions are upper case.`);
if (values.purpose !== undefined && !purposes.includes(values.purpose)) fail(`Unknown purpose "${values.purpose}".`);
const hours = Number(values.hours);
if (!(hours > 0 && hours <= 24 * 30)) fail('--hours must be between 0 and 720.');
try {
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
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
