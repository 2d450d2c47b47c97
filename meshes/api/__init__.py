"""The JSON API (`/api/v1/`, bearer API keys) and the public/broker HTTP routes.

/api/v1 (`Authorization: Bearer cm_…`; errors are `{code, message, status}`):
    GET  me                          any live key   → {mesh: {id, name, slug}, key: {…, capabilities}}
    GET  members                     read           → {members: [...]}
    GET  invites                     admin          → {invites: [...]} (links only for active invites)
    POST invites                     admin          → 201 {id, code, token, ic, joinUrl, shortUrl, expiresAt, …}
    POST invites/<id>/revoke         admin          → the invite, state "revoked" (idempotent)
    GET  api-keys                    admin          → {keys: [...]} (never a secret or hash)
    POST api-keys                    admin          → 201 {…, secret} (the only time the secret is shown)
    POST api-keys/revoke {"id"}      admin          → {status: revoked|not_found|not_unique, id?, matches?}
  codes: api_key_missing, api_key_invalid (401); api_key_missing_capability (403); invalid_args (400);
  invalid_json (422); payload_too_large (413); method_not_allowed (405); not_found, invite_not_found (404);
  any other ServiceError code with its own status.

Public (no account; the invite is the capability):
    POST /join                               protocol.md §6.3 → {ok, memberId, alreadyMember?} | {ok:false, error}
    POST /invites/<code>/claim               protocol.md §6.5 (enabled; + optional peer_pubkey, display_name)
    POST /api/public/invites/<code>/claim    the same
    GET  /api/public/invite-code/<code>      {found:true, token} | 404 {found:false}
    GET  /api/public/invite/<token>          platform.md §3.4 preview, always 200 {valid, reason?, …}
"""
