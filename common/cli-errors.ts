// What a CLI says when its flags are wrong: one line naming the flag or value, the closest one it
// knows ("did you mean"), and where the full list is, in place of the whole help text.

/** Edit distance between two short words (flags, scenario names). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(up + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = up;
    }
  }
  return row[b.length]!;
}

/** The known word closest to `word`, if it is close enough to be what was meant. */
export function didYouMean(word: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const k of known) {
    // A prefix ("slow" for slow-consumer) is as good as one typo.
    const d = word.length >= 3 && k.startsWith(word) ? 1 : distance(word, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  // One edit in three characters: "v5" is not a typo of "v1", "churm" is one of "churn".
  return best !== null && bestDistance <= Math.floor(word.length / 3) ? best : null;
}

/**
 * Rewords yargs' failure message (`msg`) for `script`, given the flags it knows and each flag's
 * choices: "unknown flag --version: did you mean --versions?".
 */
export function flagErrorLine(script: string, msg: string, flags: readonly string[], choices: Readonly<Record<string, readonly string[]>>): string {
  const help = `(${script} --help lists every flag)`;
  const unknown = /^Unknown arguments?: (.+)$/.exec(msg);
  if (unknown) {
    return unknown[1]!
      .split(', ')
      .map((f) => {
        const near = didYouMean(f, flags);
        return `unknown flag --${f}${near ? `: did you mean --${near}?` : ''}`;
      })
      .concat(help)
      .join('\n');
  }
  const invalid = /Argument: ([\w-]+), Given: "([^"]*)"/.exec(msg);
  if (invalid) {
    const [, flag, given] = invalid as unknown as [string, string, string];
    const known = choices[flag] ?? [];
    const near = didYouMean(given, known);
    return `--${flag} ${given}: ${near ? `did you mean ${near}? ` : ''}(one of ${known.join(', ')})`;
  }
  return `${msg} ${help}`;
}
