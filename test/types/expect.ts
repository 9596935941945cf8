// Exact type equality for the type tests: `expectType<Expected>()(value)` fails to compile unless
// the value's type is exactly Expected (not merely assignable either way).
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false

export function expectType<Expected> () {
  return <Actual>(_value: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : ['type differs from the expected one']): void => {}
}
