// The checks of the options objects that public methods take: one helper for the names (unknown names are an
// error that suggests the name meant; the native core owns that check and its suggestions, so the options read
// natively and those read here give the same message), and small helpers for the values.
import { native } from './native';
import { rnnkitError } from './errors';

/**
 * `options` must be undefined or a plain object whose own names are all in `known`; returns it (or `{}`).
 * ERR_RNNKIT_TYPE for a non-object, ERR_RNNKIT_ARGUMENT naming an unknown option and the closest known one.
 */
export function checkOptions<T extends object>(options: T | undefined, what: string, known: readonly string[]): T {
  if (options === undefined) return {} as T;
  if (typeof options !== 'object' || options === null || Array.isArray(options) || ArrayBuffer.isView(options))
    throw rnnkitError('ERR_RNNKIT_TYPE', `${what} must be an object, got ${describe(options)}`);
  native.checkOptionNames(options, what, known as string[]);
  return options;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'Array';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  return typeof value === 'number' ? String(value) : typeof value;
}

/** An integer option in [min, max], or its default when undefined. */
export function integerOption(value: unknown, name: string, min: number, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw rnnkitError('ERR_RNNKIT_TYPE', `${name} must be a number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw rnnkitError('ERR_RNNKIT_VALUE', `${name} must be an integer ${range}, got ${value}`);
  }
  return value;
}

/** A finite number option >= min, or its default when undefined. */
export function numberOption(value: unknown, name: string, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw rnnkitError('ERR_RNNKIT_TYPE', `${name} must be a number, got ${describe(value)}`);
  if (!Number.isFinite(value) || value < min)
    throw rnnkitError('ERR_RNNKIT_VALUE', `${name} must be a finite number >= ${min}, got ${value}`);
  return value;
}

export function booleanOption(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw rnnkitError('ERR_RNNKIT_TYPE', `${name} must be a boolean, got ${describe(value)}`);
  return value;
}

export function functionOption(value: unknown, name: string): void {
  if (value !== undefined && typeof value !== 'function')
    throw rnnkitError('ERR_RNNKIT_TYPE', `${name} must be a function, got ${describe(value)}`);
}

/** One of `choices`, or its default when undefined. */
export function choiceOption<C extends string>(value: unknown, name: string, choices: readonly C[], fallback: C): C {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value))
    throw rnnkitError('ERR_RNNKIT_ARGUMENT', `${name} must be ${choices.map((c) => `'${c}'`).join(' or ')}, got ${typeof value === 'string' ? `'${value}'` : describe(value)}`);
  return value as C;
}
