/** Socket addresses BPF copied from the traced process. */

/** struct sockaddr_in / sockaddr_in6 (28 bytes copied) → `1.2.3.4:443` or `[::1]:443`. */
export function formatSockaddr(b: Buffer): string {
  if (b.length < 8) return '';
  const family = b.readUInt16LE(0);
  const port = b.readUInt16BE(2);
  if (family === 2) return `${b[4]}.${b[5]}.${b[6]}.${b[7]}:${port}`;
  if (family === 10 && b.length >= 24) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(8 + 2 * i).toString(16));
    return `[${compressIpv6(groups)}]:${port}`;
  }
  return `family-${family}`;
}

/** RFC 5952: the longest run of two or more zero groups becomes `::`. */
function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
