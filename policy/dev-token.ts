/**
 * `npm run -s token -- --role analyst --region EMEA [--scope read:customers] [--purpose analytics]
 *  [--sub alice] [--client crm-app] [--team shipping] [--hours 8]`: prints a development token of the local issuer.
 * Unknown options, roles, regions or purposes are refused with the ones that exist (exit code 2);
 * so is a token without `--region` unless `--no-region` says it is meant (row policies match
 * regions: without one, a role they hold to sees no row). In production it mints nothing.
 */
import { Option } from 'commander';
import { CommandFailure, defineCommand, repeatable, runCommand, wholeNumber } from './command-line.js';
import { governanceRules } from './governance.rules.js';
import { DEV_REGIONS, DEV_ROLES, mintDevToken } from './identity-config.js';

const purposes = [...new Set(Object.values(governanceRules.levels).flatMap((level) => level.purposes ?? []))];

interface TokenOptions {
  readonly role?: string[];
  /** The regions given, or false for `--no-region`. */
  readonly region?: string[] | false;
  readonly scope?: string[];
  readonly purpose?: string;
  readonly sub: string;
  readonly client?: string;
  readonly team?: string[];
  readonly hours: number;
}

const command = defineCommand('npm run -s token --', 'Prints a token of the local-development issuer (refused in production).')
  .addOption(new Option('--role <role>', `a role (repeatable): ${DEV_ROLES.join(', ')}`).argParser(repeatable(DEV_ROLES)))
  .addOption(new Option('--region <region>', `a region whose rows the token may read (repeatable): ${DEV_REGIONS.join(', ')}`).argParser(repeatable(DEV_REGIONS)))
  .addOption(new Option('--no-region', 'a token with no region, on purpose (roles that bypass row policies, such as steward, still see every row)'))
  .addOption(new Option('--purpose <purpose>', 'the declared purpose of use').choices(purposes))
  .addOption(new Option('--scope <scope>', 'an OAuth scope (repeatable)').argParser(repeatable()))
  .addOption(new Option('--sub <subject>', 'the subject').default('dev-user'))
  .addOption(new Option('--client <app>', 'the app the token is issued to (azp)'))
  .addOption(new Option('--team <team>', 'a domain team it acts for at the registry API (repeatable)').argParser(repeatable()))
  .addOption(new Option('--hours <hours>', 'hours until it expires, 1 to 720').default(8).argParser(wholeNumber(1, 720)))
  .action((options: TokenOptions) => {
    if (options.region === undefined) {
      throw new CommandFailure(
        `Give --region (${DEV_REGIONS.join(', ')}; repeatable) for the rows of a region, or --no-region for a token that matches none: row policies match regions, and without one a role they hold to (analyst, support) sees no row.`,
      );
    }
    try {
      console.log(
        mintDevToken({
          subject: options.sub,
          roles: options.role ?? [],
          scopes: options.scope ?? [],
          regions: options.region || [],
          ...(options.purpose ? { purpose: options.purpose } : {}),
          ...(options.client ? { client: options.client } : {}),
          ...(options.team ? { teams: options.team } : {}),
          expiresInSeconds: options.hours * 3600,
        }),
      );
    } catch (error) {
      throw new CommandFailure((error as Error).message);
    }
  });

await runCommand(command);
