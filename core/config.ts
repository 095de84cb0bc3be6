import type { z } from 'zod';
import { AstryError } from './errors.ts';

/** Parses `value` with `schema`; throws CONFIG_INVALID naming each bad field, e.g. `invalid environment: PORT: …`. */
export function parseConfig<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new AstryError('CONFIG_INVALID', `invalid ${what}: ${problems}`);
  }
  return result.data;
}
