import { UsageError } from '../command.js';

/** `123`, `10K`, `512M`, `10G` (powers of 1024) as bytes; `flag` names the option in the error. */
export function parseSize(text: string, flag: string): number {
  const match = /^(\d+)([KMGT]?)i?B?$/i.exec(text.trim());
  if (match === null) throw new UsageError(`${flag} must be a size like 512M or 10G, not ${JSON.stringify(text)}`);
  const power = ' KMGT'.indexOf((match[2] ?? '').toUpperCase() || ' ');
  return Number(match[1]) * 1024 ** power;
}

/** `0`, `90s`, `30m`, `12h`, `7d` as seconds; `flag` names the option in the error. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)([smhd]?)$/i.exec(text.trim());
  if (match === null) throw new UsageError(`${flag} must be a duration like 30m, 12h or 7d, not ${JSON.stringify(text)}`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[(match[2] ?? '').toLowerCase()]!;
  return Number(match[1]) * unit;
}
