/**
 * How every command line of the project is written: on commander, with `--help` (and `-h`), errors
 * that name the option or argument, and the same exit codes everywhere:
 *
 *   0  done (a check passed, a token printed, a service stopped cleanly)
 *   1  done, and the answer is no: a check refused, a log does not verify, a quality rule failed
 *   2  the command could not do its work: a wrong command line, unreadable input, a store or
 *      service it needs did not answer
 *
 * A service (`npm start`, `npm run gateway`, `npm run subgraph`) exits 0 when stopped by SIGINT or
 * SIGTERM, 1 when it cannot start (its configuration refused, its ports taken) or stops on a
 * failure, and 2 on a wrong command line.
 *
 * Long-running commands (a service) return from their action and keep running; `runCommand` exits
 * only on a failure.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';

export const EXIT_OK = 0;
export const EXIT_REFUSED = 1;
export const EXIT_FAILED = 2;
/** A service that cannot start, or stops on a failure. */
export const EXIT_SERVICE_FAILED = 1;

/** A failure the command reports as it is (no stack): its message on stderr, and its exit code (2 by default). */
export class CommandFailure extends Error {
  override name = 'CommandFailure';
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILED,
  ) {
    super(message);
  }
}

/** A command with the project's conventions; add options, arguments, subcommands and an action to it. */
export function defineCommand(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .helpOption('-h, --help', 'show this help')
    .showHelpAfterError('(run with --help for usage)')
    .allowExcessArguments(false)
    .exitOverride();
}

/** The action of a service's command: a failure to start exits 1 with its message (not a command-line mistake's 2). */
export function serviceAction<A extends unknown[]>(start: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await start(...args);
    } catch (error) {
      throw new CommandFailure(error instanceof Error ? error.message : String(error), EXIT_SERVICE_FAILED);
    }
  };
}

/** Parses a whole number within bounds, for an option's value (`--hours 0` is refused, naming the bounds). */
export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value) => {
    const number = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(number) || number < min || number > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}.`);
    }
    return number;
  };
}

/** Collects a repeatable option's values (`--role a --role b`), each among `choices` when given. */
export function repeatable(choices?: readonly string[]): (value: string, previous: string[] | undefined) => string[] {
  return (value, previous) => {
    if (choices && !choices.includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}.`);
    return [...(previous ?? []), value];
  };
}

/** Whether commander stopped because help was asked for (`--help`, `help <command>`), not shown for a mistake. */
export function isHelpAskedFor(error: CommanderError): boolean {
  return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || (error.code === 'commander.help' && error.exitCode === 0);
}

/**
 * Parses the command line and runs the chosen action. `--help` exits 0; a command-line mistake
 * exits 2 after commander's message (which names the option); a CommandFailure exits with its code
 * after its message; any other error exits 2 with its message.
 */
export async function runCommand(command: Command, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  try {
    await command.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version were printed; a usage error (or the help shown for a missing command) too.
      process.exit(isHelpAskedFor(error) ? EXIT_OK : EXIT_FAILED);
    }
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(error instanceof CommandFailure ? error.exitCode : EXIT_FAILED);
  }
}
