const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** True when `text` holds half a surrogate pair, which UTF-8 cannot carry (a store gets U+FFFD). */
export function hasLoneSurrogate (text: string): boolean {
  return LONE_SURROGATE.test(text)
}
