// Values the OpenAPI examples share, so an id means the same object across every route's example.
// Shaped like real ones (the prefixes, lengths and masks Latchkey makes); the secrets that routes
// show once (a new API key, a webhook signing secret, a generated password, a connect session
// token, a handed-out credential) are visibly fake. test/openapi.test.ts checks every example
// against its own schema.

export const EXAMPLE_IDS = {
  tenant: 'ten_6DyIXZ0ND6CxI4sHiarfwk',
  systemTenant: 'ten_1ZpWcQk0Hs3ufF7tq9DnYe',
  user: 'usr_3tldeeYW9EZriCN5o23puZ',
  admin: 'usr_32Pc9kKNYBPoB5w2Gm173w',
  group: 'grp_59s1OXiWkJSCDPi9IQBY9s',
  apiKey: 'krd0WQJNkQlMNcVo',
  adminKey: 'k7swL8XQ9N1y3zsD',
  connector: 'connector_7GhSbnjspEDQShOeydjRPZ',
  perUserConnector: 'connector_2bLq8VYtRz0mWcXf5KjHsN',
  webhook: 'whk_4mJ0a7rPq2ZtYb8WcL1xQe',
  delivery: 'whd_6Tq1sVn8Ye3KpXb0ZrLm4C',
  message: 'msg_0Hk5wRc7Lt2NqYv9BxEp3J',
  audit: 'aud_01a23a958872000017019980fb414c',
  request: 'req_653f6b8423144e0e_4',
} as const;

export const EXAMPLE_TIMES = {
  created: '2026-03-02T09:15:04.118Z',
  updated: '2026-03-09T16:42:51.530Z',
  now: '2026-03-10T08:00:00.000Z',
  soon: '2026-03-10T08:10:00.000Z',
  inAnHour: '2026-03-10T09:00:00.000Z',
  inAMonth: '2026-04-09T08:00:00.000Z',
} as const;

/** `lk_<id>_…` and the last 4 characters, as every answer but the first shows a key. */
export const EXAMPLE_MASKED_KEY = `lk_${EXAMPLE_IDS.apiKey}_…abcd`;

/** Shown once by create and roll: the real format (`lk_` + id + `_` + 49 base62), plainly not a key. */
export const EXAMPLE_KEY = `lk_${EXAMPLE_IDS.apiKey}_EXAMPLEonlyNOTaREALkeyEXAMPLEonlyNOTaREALkey0abcd`;

/** A Standard Webhooks secret: `whsec_` and the base64 of 32 bytes, which here spells out what it is. */
export const EXAMPLE_WEBHOOK_SECRET = 'whsec_EXAMPLEonlyNOTaREALwebhookSIGNINGsecret0000=';

export const EXAMPLE_CONNECT_TOKEN = `lkcs_${EXAMPLE_IDS.tenant}_EXAMPLE-only-NOT-a-REAL-connect-session-tok`;

export const EXAMPLE_PUBLIC_URL = 'https://latchkey.example.com';
