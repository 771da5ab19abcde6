import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/infrastructure/config.js';

describe('loadConfig', () => {
  it('gives the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      PORT: 4000,
      MAX_UPLOAD_BYTES: 50 * 1024 * 1024,
      MAX_INFLATED_BYTES: 2_000_000_000,
      WORK_RATE_LIMIT_PER_MINUTE: 30,
      TOKEN_CACHE_SECONDS: 10,
      GRAPHQL_INTROSPECTION: true,
      NODE_ENV: 'production',
    });
  });

  it('reads GRAPHQL_INTROSPECTION=false as false', () => {
    expect(loadConfig({ GRAPHQL_INTROSPECTION: 'false' }).GRAPHQL_INTROSPECTION).toBe(false);
  });

  it('takes TOKEN_CACHE_SECONDS=0 as no token cache', () => {
    expect(loadConfig({ TOKEN_CACHE_SECONDS: '0' }).TOKEN_CACHE_SECONDS).toBe(0);
  });

  it('stops on a bad value, naming the variable', () => {
    // Progress reports inflated bytes as a GraphQL Int: the cap must fit in one.
    expect(() => loadConfig({ MAX_INFLATED_BYTES: '3000000000' })).toThrow(/MAX_INFLATED_BYTES/);
    expect(() => loadConfig({ GRAPHQL_INTROSPECTION: 'no' })).toThrow(/GRAPHQL_INTROSPECTION/);
    expect(() => loadConfig({ WORK_RATE_LIMIT_PER_MINUTE: '0' })).toThrow(
      /WORK_RATE_LIMIT_PER_MINUTE/,
    );
    expect(() => loadConfig({ TOKEN_CACHE_SECONDS: '-1' })).toThrow(/TOKEN_CACHE_SECONDS/);
    expect(() => loadConfig({ TOKEN_CACHE_SECONDS: '7200' })).toThrow(/TOKEN_CACHE_SECONDS/);
  });
});
