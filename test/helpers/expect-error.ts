// Assertions on rnnkit's errors, shared by the tests of bad input and of handle lifetimes: the stable code, a
// message that says what is wrong, isRnnkitError, TypeError for ERR_RNNKIT_TYPE, and Promise methods that report
// failures through their Promise rather than by throwing.
import tap from 'tap';
import { isRnnkitError } from '../../lib/errors';
import { native } from '../../lib/native';

type Test = typeof tap;
// Any code string: a test may also check that an unknown one is never produced.
type Code = string;

export function checkError(t: Test, err: unknown, code: Code, message: RegExp, label: string): void {
  if (!(err instanceof Error)) {
    t.fail(`${label}: expected an Error with code ${code}, got ${String(err)}`);
    return;
  }
  t.ok(isRnnkitError(err), `${label}: isRnnkitError`);
  t.equal((err as { code?: unknown }).code, code, `${label}: code (message: ${err.message})`);
  t.match(err.message, message, `${label}: message says what is wrong`);
  t.ok(native.errorCodes.includes(code), `${label}: ${code} is one of the exported codes`);
  if (code === 'ERR_RNNKIT_TYPE') t.type(err, TypeError, `${label}: a TypeError`);
}

export function throwsCode(t: Test, fn: () => unknown, code: Code, message: RegExp, label: string): void {
  let err: unknown;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    err = e;
  }
  if (!threw) {
    t.fail(`${label}: expected ${code}, but the call returned normally`);
    return;
  }
  checkError(t, err, code, message, label);
}

// A Promise-returning method reports every failure through its Promise, never by throwing synchronously.
export async function rejectsCode(t: Test, fn: () => unknown, code: Code, message: RegExp, label: string): Promise<void> {
  let p: unknown;
  try {
    p = fn();
  } catch (e) {
    t.fail(`${label}: threw synchronously (${String(e)}) instead of returning a rejected Promise`);
    return;
  }
  if (!(p instanceof Promise)) {
    t.fail(`${label}: did not return a Promise`);
    return;
  }
  try {
    await p;
  } catch (e) {
    checkError(t, e, code, message, label);
    return;
  }
  t.fail(`${label}: expected ${code}, but the Promise resolved`);
}
