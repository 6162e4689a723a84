'use strict';
// Authentication (createAuthenticator) and CORS (applyCorsActual / handleCorsPreflight),
// compared with Runner's nodeExposure.
const { describe, it, before, after } = require('node:test');
const { startPair, sameAnswer, allHandlers, taskReq, eventReq, discoveryReq, TOKEN } = require('./helpers');

function suite(title, options, cases) {
  describe(title, () => {
    let pair;
    before(async () => {
      pair = await startPair(allHandlers(), options);
    });
    after(async () => pair && pair.close());
    for (const [label, spec, expected] of cases) {
      it(`${label} (same answer as the reference)`, async () => {
        await sameAnswer(pair, spec, expected, { label });
      });
    }
  });
}
const token = (v, name = 'x-runner-token') => [name, v];

// ---------------------------------------------------------------- auth
suite(
  'auth with a single token (taken from the reference createAuthenticator)',
  { auth: { token: TOKEN }, limits: { json: { maxSize: 1024 } } },
  [
    ['correct token -> 200', taskReq('app.echo', '{"input":1}'), '200'],
    ['missing token -> 401', taskReq('app.echo', '{"input":1}', { auth: false }), '401 UNAUTHORIZED'],
    [
      'wrong token -> 401',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token('nope')] }),
      '401 UNAUTHORIZED',
    ],
    [
      'empty token header -> 401',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token('')] }),
      '401 UNAUTHORIZED',
    ],
    [
      'token with different letter case -> 401',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(TOKEN.toUpperCase())] }),
      '401 UNAUTHORIZED',
    ],
    [
      'token prefix -> 401',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(TOKEN.slice(0, -1))] }),
      '401 UNAUTHORIZED',
    ],
    [
      'token header name is case-insensitive',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(TOKEN, 'X-RUNNER-TOKEN')] }),
      '200',
    ],
    [
      'optional whitespace around the token value',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(`  ${TOKEN}\t`)] }),
      '200',
    ],
    [
      'repeated token header (same valid value twice)',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(TOKEN), token(TOKEN)] }),
      '401 UNAUTHORIZED',
    ],
    [
      'repeated token header (valid, then wrong)',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(TOKEN), token('nope')] }),
      '401 UNAUTHORIZED',
    ],
    [
      'repeated token header (wrong, then valid)',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [token('nope'), token(TOKEN)] }),
      '401 UNAUTHORIZED',
    ],
    [
      'Authorization header is not the token header -> 401',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [['Authorization', `Bearer ${TOKEN}`]] }),
      '401 UNAUTHORIZED',
    ],
    [
      'unknown task without token -> 401 (auth before existence)',
      taskReq('missing.task', '{"input":1}', { auth: false }),
      '401 UNAUTHORIZED',
    ],
    ['unknown event without token -> 401', eventReq('missing.event', '{}', { auth: false }), '401 UNAUTHORIZED'],
    ['event without token -> 401', eventReq('app.ev.wrap', '{"payload":1}', { auth: false }), '401 UNAUTHORIZED'],
    ['discovery without token -> 401', discoveryReq({ auth: false }), '401 UNAUTHORIZED'],
    ['discovery with wrong token -> 401', discoveryReq({ auth: false, headers: [token('x')] }), '401 UNAUTHORIZED'],
    [
      'invalid JSON without token -> 401 (auth before body)',
      taskReq('app.echo', '{oops', { auth: false }),
      '401 UNAUTHORIZED',
    ],
    [
      'oversized body without token -> 401, not 413 (auth before body)',
      taskReq('app.echo', `{"input":"${'x'.repeat(5000)}"}`, { auth: false }),
      '401 UNAUTHORIZED',
    ],
    [
      'oversized slow chunked body without token -> 401',
      {
        ...taskReq('app.echo', undefined, { auth: false }),
        chunked: true,
        chunks: Array.from({ length: 30 }, () => 'x'.repeat(100)),
        chunkDelayMs: 10,
      },
      '401 UNAUTHORIZED',
    ],
    [
      'oversized event body without token -> 401',
      eventReq('app.ev.wrap', `{"payload":"${'x'.repeat(5000)}"}`, { auth: false }),
      '401 UNAUTHORIZED',
    ],
    [
      'unknown route under the base without token -> 404 (no auth there)',
      { ...taskReq('x', '{}', { auth: false }), path: '/__runner/unknown' },
      '404 NOT_FOUND',
    ],
  ],
);

suite('auth with a token list (taken from the reference)', { auth: { token: ['alpha-token', 'beta-token'] } }, [
  ['first token -> 200', taskReq('app.echo', '{"input":1}', { auth: false, headers: [token('alpha-token')] }), '200'],
  ['second token -> 200', taskReq('app.echo', '{"input":1}', { auth: false, headers: [token('beta-token')] }), '200'],
  [
    'token not in the list -> 401',
    taskReq('app.echo', '{"input":1}', { auth: false, headers: [token('gamma-token')] }),
    '401 UNAUTHORIZED',
  ],
  [
    'both tokens joined -> 401',
    taskReq('app.echo', '{"input":1}', { auth: false, headers: [token('alpha-token, beta-token')] }),
    '401 UNAUTHORIZED',
  ],
  ['missing token -> 401', taskReq('app.echo', '{"input":1}', { auth: false }), '401 UNAUTHORIZED'],
  ['discovery with the second token -> 200', discoveryReq({ auth: false, headers: [token('beta-token')] }), '200'],
]);

suite('auth with a custom header name (taken from the reference)', { auth: { token: TOKEN, header: 'X-Api-Key' } }, [
  [
    'custom header in lower case -> 200',
    taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(TOKEN, 'x-api-key')] }),
    '200',
  ],
  [
    'custom header in upper case -> 200',
    taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(TOKEN, 'X-API-KEY')] }),
    '200',
  ],
  [
    'default header is not accepted -> 401',
    taskReq('app.echo', '{"input":1}', { auth: false, headers: [token(TOKEN)] }),
    '401 UNAUTHORIZED',
  ],
  [
    'event with the custom header -> 200',
    eventReq('app.ev.wrap', '{"payload":1}', { auth: false, headers: [token(TOKEN, 'x-api-key')] }),
    '200',
  ],
]);

suite('auth not configured (taken from the reference): 500 AUTH_NOT_CONFIGURED', {}, [
  ['task -> 500 AUTH_NOT_CONFIGURED', taskReq('app.echo', '{"input":1}', { auth: false }), '500 AUTH_NOT_CONFIGURED'],
  [
    'task with a token header -> 500 AUTH_NOT_CONFIGURED',
    taskReq('app.echo', '{"input":1}'),
    '500 AUTH_NOT_CONFIGURED',
  ],
  [
    'event -> 500 AUTH_NOT_CONFIGURED',
    eventReq('app.ev.wrap', '{"payload":1}', { auth: false }),
    '500 AUTH_NOT_CONFIGURED',
  ],
  ['discovery -> 500 AUTH_NOT_CONFIGURED', discoveryReq({ auth: false }), '500 AUTH_NOT_CONFIGURED'],
  [
    'unknown task -> 500 AUTH_NOT_CONFIGURED (auth before existence)',
    taskReq('missing.task', '', { auth: false }),
    '500 AUTH_NOT_CONFIGURED',
  ],
]);

suite(
  'auth object without token (taken from the reference): 500 AUTH_NOT_CONFIGURED',
  { auth: { header: 'x-other' } },
  [['task -> 500', taskReq('app.echo', '{"input":1}', { auth: false }), '500 AUTH_NOT_CONFIGURED']],
);

suite('allowAnonymous without token (taken from the reference)', { auth: { allowAnonymous: true } }, [
  ['task without token -> 200', taskReq('app.echo', '{"input":1}', { auth: false }), '200'],
  [
    'task with any token -> 200',
    taskReq('app.echo', '{"input":1}', { auth: false, headers: [token('whatever')] }),
    '200',
  ],
  ['event without token -> 200', eventReq('app.ev.wrap', '{"payload":1,"returnPayload":true}', { auth: false }), '200'],
  ['discovery without token -> 200', discoveryReq({ auth: false }), '200'],
]);

suite(
  'allowAnonymous does not bypass a configured token (taken from the reference)',
  { auth: { token: TOKEN, allowAnonymous: true } },
  [
    ['missing token -> 401', taskReq('app.echo', '{"input":1}', { auth: false }), '401 UNAUTHORIZED'],
    ['correct token -> 200', taskReq('app.echo', '{"input":1}'), '200'],
  ],
);

// ---------------------------------------------------------------- CORS
const AUTH = { token: TOKEN };
const origin = (o) => ['Origin', o];
const preflight = (path, headers = []) => ({ method: 'OPTIONS', path, headers });
const acrm = ['Access-Control-Request-Method', 'POST'];
const acrh = (v) => ['Access-Control-Request-Headers', v];

const corsCommon = (o) => [
  ['task success', taskReq('app.echo', '{"input":1}', { headers: [origin(o)] }), '200'],
  ['task success without Origin', taskReq('app.echo', '{"input":1}'), '200'],
  ['401 error answer', taskReq('app.echo', '{"input":1}', { auth: false, headers: [origin(o)] }), '401 UNAUTHORIZED'],
  ['404 unknown task', taskReq('missing', '{}', { headers: [origin(o)] }), '404 NOT_FOUND'],
  [
    '404 outside the base path',
    { ...taskReq('x', '{}', { headers: [origin(o)] }), path: '/elsewhere' },
    '404 NOT_FOUND',
  ],
  [
    '405 wrong method',
    taskReq('app.echo', undefined, { method: 'GET', headers: [origin(o)] }),
    '405 METHOD_NOT_ALLOWED',
  ],
  ['400 invalid JSON', taskReq('app.echo', '{', { headers: [origin(o)] }), '400 INVALID_JSON'],
  ['500 handler error', taskReq('app.throwPlain', '', { headers: [origin(o)] }), '500 INTERNAL_ERROR'],
  ['418 typed error', taskReq('app.throwTeapot', '', { headers: [origin(o)] }), '418 INTERNAL_ERROR'],
  ['499 cancellation', taskReq('app.throwCancellation', '', { headers: [origin(o)] }), '499 REQUEST_ABORTED'],
  ['event success', eventReq('app.ev.wrap', '{"payload":1}', { headers: [origin(o)] }), '200'],
  ['discovery', discoveryReq({ headers: [origin(o)] }), '200'],
  [
    'preflight on a task',
    preflight('/__runner/task/app.echo', [origin(o), acrm, acrh('content-type, x-runner-token')]),
    '204',
  ],
  ['preflight on an unknown task', preflight('/__runner/task/missing', [origin(o), acrm]), '204'],
  ['preflight on an event', preflight('/__runner/event/app.ev.wrap', [origin(o), acrm, acrh('X-Custom')]), '204'],
  ['preflight on discovery', preflight('/__runner/discovery', [origin(o), acrh('x-runner-token')]), '204'],
  ['preflight on the base path', preflight('/__runner', [origin(o)]), '204'],
  ['preflight on an unknown route under the base', preflight('/__runner/whatever/x', [origin(o)]), '204'],
  ['preflight outside the base path -> 404', preflight('/elsewhere', [origin(o), acrm]), '404 NOT_FOUND'],
  ['preflight without Origin', preflight('/__runner/task/app.echo', [acrm]), '204'],
  ['preflight without Access-Control-Request-Headers', preflight('/__runner/task/app.echo', [origin(o), acrm]), '204'],
  [
    'preflight with repeated Access-Control-Request-Headers',
    preflight('/__runner/task/app.echo', [origin(o), acrh('a-one'), acrh('b-two')]),
    '204',
  ],
  [
    'preflight needs no token and reads no body',
    { ...preflight('/__runner/task/app.echo', [origin(o), ['Content-Type', 'application/json']]), body: '{"input":1}' },
    '204',
  ],
];

suite(
  'CORS not configured (taken from the reference): Access-Control-Allow-Origin *',
  { auth: AUTH },
  corsCommon('https://anything.example'),
);

suite('CORS origin as a string (taken from the reference)', { auth: AUTH, cors: { origin: 'https://app.example' } }, [
  ...corsCommon('https://app.example'),
  [
    'other origin still gets the configured string',
    taskReq('app.echo', '{"input":1}', { headers: [origin('https://evil.example')] }),
    '200',
  ],
]);

const LIST = ['https://a.example', 'https://b.example'];
suite(
  'CORS origin as a list (taken from the reference): echo when listed, Vary: Origin',
  { auth: AUTH, cors: { origin: LIST } },
  [
    ...corsCommon('https://b.example'),
    [
      'non-matching origin: no Allow-Origin, Vary still set',
      taskReq('app.echo', '{"input":1}', { headers: [origin('https://evil.example')] }),
      '200',
    ],
    [
      'non-matching origin on an error answer',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [origin('https://evil.example')] }),
      '401 UNAUTHORIZED',
    ],
    [
      'origin differing only in case does not match',
      taskReq('app.echo', '{"input":1}', { headers: [origin('https://A.example')] }),
      '200',
    ],
    [
      'origin with a trailing slash does not match',
      taskReq('app.echo', '{"input":1}', { headers: [origin('https://a.example/')] }),
      '200',
    ],
    ['"null" origin does not match', taskReq('app.echo', '{"input":1}', { headers: [origin('null')] }), '200'],
    [
      'repeated Origin headers',
      taskReq('app.echo', '{"input":1}', { headers: [origin('https://a.example'), origin('https://b.example')] }),
      '200',
    ],
    [
      'non-matching preflight',
      preflight('/__runner/task/app.echo', [origin('https://evil.example'), acrm, acrh('content-type')]),
      '204',
    ],
  ],
);

suite(
  'CORS corsOrigins shorthand on the native side equals cors.origin list on the reference',
  { auth: AUTH, cors: { origin: LIST }, native: { cors: undefined, corsOrigins: LIST } },
  [
    ['matching origin', taskReq('app.echo', '{"input":1}', { headers: [origin('https://a.example')] }), '200'],
    ['non-matching origin', taskReq('app.echo', '{"input":1}', { headers: [origin('https://evil.example')] }), '200'],
    [
      'matching preflight',
      preflight('/__runner/task/app.echo', [origin('https://b.example'), acrm, acrh('content-type')]),
      '204',
    ],
    [
      'error answer with a matching origin',
      taskReq('app.throwTeapot', '', { headers: [origin('https://a.example')] }),
      '418 INTERNAL_ERROR',
    ],
  ],
);

suite(
  'CORS origin as a RegExp (taken from the reference)',
  { auth: AUTH, cors: { origin: /^https:\/\/[a-z]+\.trusted\.example$/ } },
  [
    ...corsCommon('https://app.trusted.example'),
    [
      'non-matching origin',
      taskReq('app.echo', '{"input":1}', { headers: [origin('https://app.trusted.example.evil')] }),
      '200',
    ],
    [
      'non-matching preflight',
      preflight('/__runner/task/app.echo', [origin('http://app.trusted.example'), acrm]),
      '204',
    ],
  ],
);

suite(
  'CORS origin as a function (taken from the reference)',
  { auth: AUTH, cors: { origin: (o) => (o && o.endsWith('.fn.example') ? o : undefined) } },
  [
    ...corsCommon('https://x.fn.example'),
    [
      'function rejecting the origin',
      taskReq('app.echo', '{"input":1}', { headers: [origin('https://evil.example')] }),
      '200',
    ],
    [
      'function rejecting a preflight',
      preflight('/__runner/task/app.echo', [origin('https://evil.example'), acrm]),
      '204',
    ],
  ],
);

suite(
  'CORS origin function returning a fixed origin (taken from the reference)',
  { auth: AUTH, cors: { origin: () => 'https://fixed.example' } },
  [
    ['with an Origin', taskReq('app.echo', '{"input":1}', { headers: [origin('https://x.example')] }), '200'],
    ['without an Origin', taskReq('app.echo', '{"input":1}'), '200'],
    ['preflight', preflight('/__runner/task/app.echo', [origin('https://x.example'), acrm]), '204'],
  ],
);

suite(
  'CORS credentials without origin (taken from the reference): no "*", Vary: Origin',
  { auth: AUTH, cors: { credentials: true } },
  [...corsCommon('https://creds.example')],
);

suite(
  'CORS credentials with an origin list (taken from the reference)',
  { auth: AUTH, cors: { origin: LIST, credentials: true } },
  [
    ['matching origin', taskReq('app.echo', '{"input":1}', { headers: [origin('https://a.example')] }), '200'],
    ['non-matching origin', taskReq('app.echo', '{"input":1}', { headers: [origin('https://evil.example')] }), '200'],
    [
      'matching preflight',
      preflight('/__runner/task/app.echo', [origin('https://a.example'), acrm, acrh('content-type')]),
      '204',
    ],
    [
      '401 with matching origin',
      taskReq('app.echo', '{"input":1}', { auth: false, headers: [origin('https://a.example')] }),
      '401 UNAUTHORIZED',
    ],
  ],
);

suite(
  'CORS exposedHeaders (taken from the reference)',
  { auth: AUTH, cors: { origin: 'https://app.example', exposedHeaders: ['x-runner-request-id', 'X-Other'] } },
  [
    ['task success', taskReq('app.echo', '{"input":1}', { headers: [origin('https://app.example')] }), '200'],
    ['error answer', taskReq('app.throwPlain', '', { headers: [origin('https://app.example')] }), '500 INTERNAL_ERROR'],
    [
      'preflight (no expose header there)',
      preflight('/__runner/task/app.echo', [origin('https://app.example'), acrm]),
      '204',
    ],
  ],
);

suite('CORS varyOrigin: false (taken from the reference)', { auth: AUTH, cors: { origin: LIST, varyOrigin: false } }, [
  ['matching origin', taskReq('app.echo', '{"input":1}', { headers: [origin('https://a.example')] }), '200'],
  ['non-matching origin', taskReq('app.echo', '{"input":1}', { headers: [origin('https://evil.example')] }), '200'],
  ['preflight', preflight('/__runner/task/app.echo', [origin('https://a.example'), acrm]), '204'],
]);

suite(
  'CORS preflight with methods, allowedHeaders and maxAge configured (taken from the reference)',
  {
    auth: AUTH,
    cors: {
      origin: 'https://app.example',
      methods: ['GET', 'POST', 'OPTIONS'],
      allowedHeaders: ['content-type', 'x-runner-token'],
      maxAge: 600,
      credentials: true,
    },
  },
  [
    [
      'preflight with requested headers (configured list wins)',
      preflight('/__runner/task/app.echo', [origin('https://app.example'), acrm, acrh('x-something-else')]),
      '204',
    ],
    [
      'preflight without requested headers',
      preflight('/__runner/task/app.echo', [origin('https://app.example'), acrm]),
      '204',
    ],
    ['preflight on discovery', preflight('/__runner/discovery', [origin('https://app.example')]), '204'],
    [
      'actual request (no preflight-only headers)',
      taskReq('app.echo', '{"input":1}', { headers: [origin('https://app.example')] }),
      '200',
    ],
  ],
);

suite(
  'CORS preflight with maxAge 0 and empty methods/allowedHeaders lists (taken from the reference)',
  { auth: AUTH, cors: { methods: [], allowedHeaders: [], maxAge: 0 } },
  [
    [
      'preflight',
      preflight('/__runner/task/app.echo', [origin('https://x.example'), acrm, acrh('content-type')]),
      '204',
    ],
    ['actual request', taskReq('app.echo', '{"input":1}', { headers: [origin('https://x.example')] }), '200'],
  ],
);
