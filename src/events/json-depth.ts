/**
 * H2O writes one flat JSON object per line (h2o-tracing-interfaces §1: the prefix, then scalar fields). Deep
 * nesting of a long line is told apart before JSON.parse builds it: a few MB of `[[[[…` parse into hundreds of MB
 * of arrays. A short line is scanned only if it parsed into something not flat (see decode-json.ts).
 */

/**
 * Nesting parsed at most: H2O's object, and one level more, which the parse judges as before (two lines glued by a
 * partial write are malformed; a field that holds an object or array is not a field value). Within it a line
 * parses into no more than its own size; deeper, it is dropped unparsed.
 */
export const MAX_JSON_DEPTH = 2;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Whether JSON text `text` opens more than `max` objects or arrays inside one another (strings skipped). */
export function nestedBeyond(text: string, max = MAX_JSON_DEPTH): boolean {
  // Flat lines (nearly all) have no `[` and no `{` but the first: two native searches, no scan.
  if (text.indexOf('[') < 0 && text.indexOf('{', 1) < 0) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === BACKSLASH) i++;
        else if (d === QUOTE) break;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}
