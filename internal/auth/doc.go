// Package auth authenticates the web API's requests and decides what they may do.
//
// # Credentials
//
// Every request carries "Authorization: Bearer <token>", where the token is either
//
//   - a personal API token: an opaque string starting with "shp_", minted for a user,
//     shown once, stored only as its SHA-256 (metastore.CreatePersonalToken); or
//   - an OIDC token (a JWT) from the configured issuer (OIDCConfig): the signature is
//     checked against the issuer's published keys, refetched when a token names a key
//     not seen yet (at most once per keyRefreshMinInterval), so the issuer's key
//     rotation needs no restart; then the issuer, the audience, expiry and not-before.
//     The tenant comes from the tenant claim ("shoal_tenant" by default) and the user is
//     looked up by the email claim, case-insensitively, among that tenant's users.
//
// Ingest keys ("shk_") are refused: they authenticate event ingestion only.
//
// Either way the user's role is read from the metadata store on every request, so a
// role change applies at once, and the Principal's TenantID, which scopes every query,
// comes from the credentials alone.
//
// # Refusals
//
// Authenticator errors are *Error with a Reason. HTTPStatus maps them: 401 when the
// request is not authenticated (missing, malformed, expired, wrong audience, unknown
// issuer or key, unknown user or token, revoked, tenant deleted), 403 when it is but may
// not act (role, tenant suspended), 503 when the issuer or the store could not be
// reached. The client is told PublicReason only; the detail is logged.
//
// # Suspended and deleted tenants
//
// A tenant being deleted authenticates nobody (401). A suspended tenant (typically
// unpaid) still authenticates: its users can read their data, dashboards, alerts and
// subscription, and can manage users and tokens (so a leaked token can always be
// revoked), but every action that changes what the platform runs or stores for the
// tenant is refused with 403 (the "While suspended" column below).
//
// # Roles
//
// owner > admin > editor > viewer: each role may do everything the roles below it may.
// Authorize checks one action per endpoint; AuthorizeRoleChange adds that only owners
// grant or take away the owner role, and the store refuses to demote the last owner.
// PermissionsMarkdown generates this table (a test keeps it in sync):
//
//	| Action | Description | owner | admin | editor | viewer | While suspended |
//	|---|---|:---:|:---:|:---:|:---:|:---:|
//	| `metrics.read` | Query metrics and raw events | ✓ | ✓ | ✓ | ✓ | allowed |
//	| `dashboards.read` | List and view dashboards | ✓ | ✓ | ✓ | ✓ | allowed |
//	| `dashboards.write` | Create, update and delete dashboards | ✓ | ✓ | ✓ |   | refused |
//	| `datasources.read` | List and view data sources (never their credentials) | ✓ | ✓ | ✓ |   | allowed |
//	| `datasources.manage` | Create and delete data sources | ✓ | ✓ |   |   | refused |
//	| `alerts.read` | View alert rules and active and recent alerts | ✓ | ✓ | ✓ | ✓ | allowed |
//	| `alerts.manage` | Create, update and delete alert rules | ✓ | ✓ | ✓ |   | refused |
//	| `tokens.manage-own` | Create, list and revoke one's own personal API tokens | ✓ | ✓ | ✓ | ✓ | allowed |
//	| `users.read` | List the tenant's users and their roles | ✓ | ✓ |   |   | allowed |
//	| `users.manage` | Change the roles of users other than owners, up to admin | ✓ | ✓ |   |   | allowed |
//	| `owners.manage` | Grant or take away the owner role (never from the last owner) | ✓ |   |   |   | allowed |
//	| `subscription.read` | View the plan, subscription state, limits and usage | ✓ | ✓ |   |   | allowed |
package auth
