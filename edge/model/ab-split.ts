/**
 * Champion/challenger assignment by a stable hash of the experiment's salt and the user id: for
 * one salt, the same user always lands in the same arm for a given share, and raising the share
 * only moves champion users over (a user in the challenger at 10% stays there at 20%), so an
 * experiment can ramp up without reshuffling. Another salt (another challenger, or another
 * MTRANK_AB_SALT) draws the challenger's users afresh, independently of the last experiment, so
 * the same users are not the challenger's every time.
 */

export type Arm = "champion" | "challenger";

/** 10,000 buckets: shares down to 0.01%. */
const BUCKETS = 10_000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * An experiment's salt folded into the FNV-1a state (saltState): computed once per salt, it is
 * where hashing each user id starts, so a request hashes its user id alone.
 */
export type SaltState = number;

/**
 * The salt's code units, then its length (so that salt "ab" with id "c" and salt "a" with id
 * "bc" hash apart), folded into FNV-1a's starting state.
 */
export function saltState(salt: string): SaltState {
  let h = fold(FNV_OFFSET, salt);
  h = Math.imul(h ^ (salt.length & 0xffff), FNV_PRIME);
  h = Math.imul(h ^ (salt.length >>> 16), FNV_PRIME);
  // FNV carries a difference only towards the high bits: mixed, two salts' states differ in
  // about half their bits, low ones included.
  return mix(h);
}

/**
 * The salt of a challenger when the operator sets none (MTRANK_AB_SALT): its manifest's id and
 * version, so a new challenger model draws new users and one model keeps its users while its
 * share ramps.
 */
export function modelSalt(model: { id: string; version: string }): string {
  return `model:${model.id}@${model.version}`;
}

/** `sharePercent` in [0, 100]: the percentage of user ids the challenger serves. */
export function assignArm(userId: string, sharePercent: number, salt: SaltState): Arm {
  return userBucket(userId, salt) < sharePercent * (BUCKETS / 100) ? "challenger" : "champion";
}

/**
 * FNV-1a over the id's UTF-16 code units, from the salt's state, then murmur3's finaliser so
 * nearby ids spread over all buckets.
 */
export function userBucket(userId: string, salt: SaltState): number {
  return mix(fold(salt, userId)) % BUCKETS;
}

/** murmur3's 32-bit finaliser: every input bit flips about half the output bits. */
function mix(state: number): number {
  let h = state;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function fold(state: number, text: string): number {
  let h = state;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}
