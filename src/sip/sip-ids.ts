import { randomBytes } from 'node:crypto';

/** RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this cookie. */
export const BRANCH_MAGIC_COOKIE = 'z9hG4bK';

/** A From/To tag with at least 32 bits of randomness (RFC 3261 §19.3). */
export function newTag(): string {
  return randomBytes(8).toString('hex');
}

/** A branch unique across space and time (RFC 3261 §8.1.1.7). */
export function newBranch(): string {
  return BRANCH_MAGIC_COOKIE + randomBytes(12).toString('hex');
}
