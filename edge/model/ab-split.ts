/**
 * Champion/challenger assignment by a stable hash of the user id: the same user always lands in
 * the same arm for a given share, and raising the share only moves champion users over (a user
 * in the challenger at 10% stays there at 20%), so an experiment can ramp up without reshuffling.
 */

export type Arm = "champion" | "challenger";

/** 10,000 buckets: shares down to 0.01%. */
const BUCKETS = 10_000;

/** `sharePercent` in [0, 100]: the percentage of user ids the challenger serves. */
export function assignArm(userId: string, sharePercent: number): Arm {
  return userBucket(userId) < sharePercent * (BUCKETS / 100) ? "challenger" : "champion";
}

/** FNV-1a over the UTF-16 code units, then murmur3's finaliser so nearby ids spread over all buckets. */
export function userBucket(userId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i += 1) {
    h ^= userId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % BUCKETS;
}
