// What a member's name may be, and when two names are the same name. Part of protocol.ts (which
// re-exports it); it imports nothing.

// Printable: 1-64 code points, no control characters (Cc), no invisible format ones (Cf: bidi
// overrides, zero-width spaces, which let a name pose as another or reverse what follows it), no
// line or paragraph separators; and something visible: not only white space, fillers (Hangul
// fillers, the braille blank), default-ignorable code points (variation selectors) or combining marks.
const NAME_PATTERN = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]{1,64}$/u;
const BLANK = /^[\p{White_Space}\p{Cf}\p{Default_Ignorable_Code_Point}\p{M}\u2800]*$/u;
/** What nameKey folds away: code points that render as nothing. */
const IGNORABLE = /[\p{Default_Ignorable_Code_Point}\u2800]/gu;

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name) && !BLANK.test(name);
}

/**
 * Two names are the same name when they differ only in letter case, Unicode compatibility form
 * (NFKC: full-width letters, a no-break space), code points that render as nothing, or white space
 * around and between words. (Look-alikes from other scripts, Cyrillic "А" for Latin "A", are not
 * folded: that needs Unicode's confusables data, TS #39.)
 */
export function nameKey(name: string): string {
  return name.normalize('NFKC').replace(IGNORABLE, '').trim().replace(/\s+/gu, ' ').toLowerCase().normalize('NFKC');
}
