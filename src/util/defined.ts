// withoutUndefined(): optional fields passed on only when set. Under exactOptionalPropertyTypes an
// optional field may not be given `undefined`, so option objects are built from what is defined.

/** The entries of `o` whose value is not undefined. */
export function withoutUndefined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}
