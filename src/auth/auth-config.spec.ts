import { problemsOf } from '../../test/support/config-problems';
import { loadConfig } from '../config/config';

describe('auth configuration', () => {
  it('has safe defaults', () => {
    expect(loadConfig({}).auth).toMatchObject({
      mode: 'entra',
      acceptV1Tokens: false,
      jwksCacheMaxAgeMs: 3_600_000,
      clockToleranceMs: 60_000,
      requiredScopes: ['access_as_user'],
      adminRole: 'Gateway.Admin',
      defaultRoles: [],
    });
  });

  it('reads lists, booleans and durations', () => {
    const config = loadConfig({
      AZURE_ACCEPT_V1_TOKENS: 'true',
      AUTH_REQUIRED_SCOPES: 'access_as_user, Tools.Call  https://gw.contoso.com/x',
      AUTH_DEFAULT_ROLES: 'Gateway.User,Everyone',
      AUTH_CLOCK_TOLERANCE_MS: '0',
      AZURE_CLIENT_CERTIFICATE_PATH: 'certs/gateway.pem',
    });
    expect(config.auth).toMatchObject({
      acceptV1Tokens: true,
      requiredScopes: ['access_as_user', 'Tools.Call', 'https://gw.contoso.com/x'],
      defaultRoles: ['Gateway.User', 'Everyone'],
      clockToleranceMs: 0,
      clientCertificatePath: expect.stringMatching(/\/certs\/gateway\.pem$/),
    });
  });

  it('names each bad auth key and its rule', () => {
    expect(
      problemsOf({
        AZURE_ACCEPT_V1_TOKENS: 'yes',
        AZURE_JWKS_CACHE_MAX_AGE_MS: '10',
        AUTH_ADMIN_ROLE: 'Gateway Admin',
        AUTH_CLOCK_TOLERANCE_MS: '-5',
      }),
    ).toEqual([
      'AZURE_ACCEPT_V1_TOKENS: must be true or false',
      'AZURE_JWKS_CACHE_MAX_AGE_MS: must be a whole number of milliseconds from 1000 to 604800000',
      'AUTH_CLOCK_TOLERANCE_MS: must be a whole number of milliseconds from 0 to 600000',
      'AUTH_ADMIN_ROLE: must be a role name without spaces or commas',
    ]);
  });

  it('refuses dev mode when NODE_ENV is production, and only then', () => {
    expect(problemsOf({ AUTH_MODE: 'dev', NODE_ENV: 'production' })).toEqual([
      'AUTH_MODE: dev is refused when NODE_ENV is production',
    ]);
    expect(loadConfig({ AUTH_MODE: 'dev', NODE_ENV: 'development' }).auth.mode).toBe('dev');
    expect(loadConfig({ AUTH_MODE: 'entra', NODE_ENV: 'production' }).nodeEnv).toBe('production');
  });
});
