// A real OpenID Connect provider for the sign-in tests: panva's oidc-provider (OpenID
// Certified), configured from one JSON file so the Python side decides the port, the clients,
// the accounts and their groups, and the signing key (the tests sign tokens of their own
// with it to check expiry and audience handling). Started by tests/oidc/provider.py.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
// Re-read at every sign-in, so a test can change someone's groups between two sign-ins:
// { "alice": { "groups": ["dv-viewers"] }, ... }
const accounts = () => JSON.parse(readFileSync(config.accounts_file, 'utf8'));

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: ['daemonviz-test-cookie-key'] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  // Every client here must use PKCE (S256): a flow without it is refused by the provider.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true }, // the provider's own login page (any password)
    rpInitiatedLogout: { enabled: true }, // end_session_endpoint
  },
  // First-party client: grant the requested scopes without a consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, id) {
    const account = accounts()[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, name: id, email: `${id}@example.test`, groups: account.groups };
      },
    };
  },
});
// Refusals go to the log the tests print when they fail.
for (const event of ['end_session.error', 'authorization.error', 'grant.error', 'userinfo.error', 'server_error']) {
  provider.on(event, (ctx, err) => console.log(event, err?.message, err?.error_description || '', err?.cause?.message || ''));
}
provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
