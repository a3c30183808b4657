import { createHash, timingSafeEqual } from 'node:crypto';
import type { PoolConfig } from '../config/index.ts';
import { ConfigError, UnauthorisedError } from '../core/index.ts';
import { hasRole, type Role } from './roles.ts';

export interface Principal {
  /** The token's name from the config: what the audit trail records. Never the token itself. */
  name: string;
  role: Role;
}

interface Entry {
  name: string;
  role: Role;
  digest: Buffer;
}

/** Without tokens the API is loopback-only and every caller is this principal. */
export const localPrincipal: Principal = { name: 'local', role: 'admin' };

/**
 * The API's tokens (SPEC §8). Values come from the environment (`token: env:NAME`) so they never sit in
 * the config file; they are compared as SHA-256 digests with timingSafeEqual, so neither the content nor
 * the length of a guess leaks through timing.
 */
export class TokenTable {
  private readonly entries: Entry[];

  private constructor(entries: Entry[]) {
    this.entries = entries;
  }

  static fromConfig(config: PoolConfig, env: NodeJS.ProcessEnv = process.env): TokenTable {
    const issues: Array<{ path: string; message: string }> = [];
    const entries: Entry[] = [];
    config.api.tokens.forEach((token, i) => {
      const variable = token.token.slice('env:'.length);
      const value = env[variable];
      if (!value)
        issues.push({
          path: `api.tokens[${i}].token`,
          message: `environment variable ${variable} is not set`,
        });
      else if (value.length < 16)
        issues.push({
          path: `api.tokens[${i}].token`,
          message: `${variable} must be at least 16 characters`,
        });
      else entries.push({ name: token.name, role: token.role, digest: digest(value) });
    });
    if (issues.length > 0) throw new ConfigError(issues);
    return new TokenTable(entries);
  }

  /** A table without tokens: everyone is the local admin. */
  static none(): TokenTable {
    return new TokenTable([]);
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** The caller behind an `Authorization: Bearer …` header; 401 when missing or unknown, 403 when too weak. */
  authorise(header: string | undefined, needed: Role): Principal {
    if (!this.enabled) return localPrincipal;
    const presented = bearer(header);
    if (!presented)
      throw new UnauthorisedError('a token is required (Authorization: Bearer …, or --token / EBB_TOKEN)');
    const found = this.lookup(presented);
    if (!found) throw new UnauthorisedError('the token is not valid');
    if (!hasRole(found.role, needed)) {
      throw new UnauthorisedError(`token "${found.name}" has role ${found.role}; this needs ${needed}`, 403);
    }
    return found;
  }

  /**
   * Whose valid token the header carries, whatever its role; null without one (or without tokens). For the
   * audit record of a request refused for another reason (SPEC §8): it names the token, never its value.
   */
  identify(header: string | undefined): Principal | null {
    if (!this.enabled) return null;
    const presented = bearer(header);
    return presented ? this.lookup(presented) : null;
  }

  private lookup(presented: string): Principal | null {
    const candidate = digest(presented);
    let found: Entry | undefined;
    // Compare against every entry, so the time taken does not tell which one matched.
    for (const entry of this.entries) if (timingSafeEqual(entry.digest, candidate)) found ??= entry;
    return found ? { name: found.name, role: found.role } : null;
  }
}

function bearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
