// Option parsers shared by the subcommands: strict numbers (a typo is an error, never NaN or a
// silent truncation) and repeatable options. Failures surface as invalid_argument.
import { InvalidArgumentError } from 'commander';

function parseNumber(raw: string): number {
  const s = raw.trim();
  if (s === '' || !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) throw new InvalidArgumentError(`'${raw}' is not a number.`);
  return Number(s);
}

function parsedAs(raw: string, ok: (n: number) => boolean, what: string): number {
  const n = parseNumber(raw);
  if (!ok(n)) throw new InvalidArgumentError(`'${raw}' is not ${what}.`);
  return n;
}

function atLeast(n: number, min: number, raw: string): number {
  if (n < min) throw new InvalidArgumentError(`'${raw}' must be >= ${min}.`);
  return n;
}

export function floatArg(raw: string): number {
  return parsedAs(raw, Number.isFinite, 'a finite number');
}

export function nonNegativeArg(raw: string): number {
  return atLeast(floatArg(raw), 0, raw);
}

export function intArg(raw: string): number {
  return parsedAs(raw, Number.isSafeInteger, 'an integer');
}

export function positiveIntArg(raw: string): number {
  return atLeast(intArg(raw), 1, raw);
}

/** A TCP port: an integer in 0-65535 (0 lets the OS pick a free one). */
export function portArg(raw: string): number {
  const s = raw.trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n > 65535)
    throw new InvalidArgumentError(`'${raw}' is not a port: expected an integer in 0-65535 (0 picks a free port).`);
  return n;
}

/** For repeatable options: `--stop a --stop b` -> ['a', 'b']. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function choiceArg<T extends string>(choices: readonly T[]): (raw: string) => T {
  return (raw: string) => {
    if (!(choices as readonly string[]).includes(raw)) throw new InvalidArgumentError(`'${raw}' is not one of ${choices.join(', ')}.`);
    return raw as T;
  };
}
