// OpenSSH's MaxStartups value, "start:rate:full" (or a single number N = N:100:N).
export interface StartupsSpec {
  start: number;
  rate: number;
  full: number;
}

export function parseStartups(text: string): StartupsSpec {
  const parts = String(text).trim().split(':');
  const nums = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (nums.some((n) => Number.isNaN(n)) || (nums.length !== 1 && nums.length !== 3)) {
    throw new Error(`must be "start:rate:full" or a number, got ${JSON.stringify(text)}`);
  }
  const [start, rate, full] = nums.length === 1 ? [nums[0]!, 100, nums[0]!] : (nums as [number, number, number]);
  if (start < 1 || full < start || rate > 100) {
    throw new Error(`needs 1 <= start <= full and rate <= 100, got ${JSON.stringify(text)}`);
  }
  return { start, rate, full };
}
