'use strict';
// Routing and id decoding, compared with Runner's nodeExposure (createRouter / resolveTargetFromRequest):
// both servers get the same raw requests and must give the same answers.
const { describe, it, before, after } = require('node:test');
const { startPair, sameAnswer, allHandlers, taskReq, eventReq, discoveryReq, authHeader, TOKEN } = require('./helpers');

const AUTH = { token: TOKEN };

describe('routes and id decoding (taken from the reference createRouter)', () => {
  let pair;
  before(async () => {
    pair = await startPair(allHandlers(), { auth: AUTH });
  });
  after(async () => pair && pair.close());

  const cases = [
    ['task id with dots', taskReq('a.b.c', '{}')],
    ['task id with %2F-encoded slash', taskReq('a%2Fb', '{}')],
    ['task id with lowercase %2f', taskReq('a%2fb', '{}')],
    ['task id spread over path segments is joined with "/"', taskReq('a/b', '{}')],
    ['double slash inside the id is collapsed', taskReq('a//b', '{}')],
    ['double slash before the id is ignored', taskReq('/app.echo', '{"input":1}')],
    [
      'double slash after the base path is ignored',
      { ...taskReq('app.echo', '{"input":2}'), path: '/__runner//task/app.echo' },
    ],
    ['trailing slash after the id is ignored', taskReq('app.echo/', '{"input":3}')],
    ['percent-encoded UTF-8 id', taskReq('%C3%A9t%C3%A9', '{}')],
    ['percent-encoded space in the id', taskReq('with%20space', '{}')],
    ['double-encoded percent is decoded once', taskReq('%2541', '{}')],
    ['"+" is not decoded to a space', taskReq('a+b', '{}')],
    ['percent-encoded dots', taskReq('a%2Eb%2Ec', '{}')],
    ['empty id -> 404 Not Found', taskReq('', '{}')],
    ['no id segment -> 404 Not Found', { ...taskReq('x', '{}'), path: '/__runner/task' }],
    ['bad percent-encoding %zz -> 404', taskReq('app%zzecho', '{}')],
    ['truncated percent-encoding -> 404', taskReq('app.echo%2', '{}')],
    ['percent-encoded invalid UTF-8 (%FF) -> 404', taskReq('%FF', '{}')],
    ['percent-encoded overlong UTF-8 (%C0%AF) -> 404', taskReq('%C0%AF', '{}')],
    ['unknown task id -> 404 Task {id} not found', taskReq('nope.missing', '{}')],
    ['unknown task id is reported decoded', taskReq('no%2Fpe%20x', '{}')],
    ['task named like a route keyword', taskReq('discovery', '{}')],
    ['unknown event id -> 404 Event {id} not found', eventReq('nope.event', '{"payload":1}')],
    ['event id with dots', eventReq('app.ev.wrap', '{"payload":1,"returnPayload":true}')],
    ['empty event id -> 404', eventReq('', '{}')],
    ['unknown kind -> 404', { ...taskReq('x', '{}'), path: '/__runner/tasks/app.echo' }],
    ['kind is case-sensitive -> 404', { ...taskReq('x', '{}'), path: '/__runner/TASK/app.echo' }],
    ['base path alone -> 404', { ...taskReq('x', '{}'), path: '/__runner' }],
    ['base path with trailing slash -> 404', { ...taskReq('x', '{}'), path: '/__runner/' }],
    ['path outside the base path -> 404 without request id', { ...taskReq('x', '{}'), path: '/other/task/app.echo' }],
    ['path that only starts like the base path -> 404', { ...taskReq('x', '{}'), path: '/__runnerx/task/app.echo' }],
    ['root path -> 404', { ...taskReq('x', '{}'), path: '/' }],
    ['GET on a path outside the base path -> 404', { method: 'GET', path: '/favicon.ico', headers: [] }],
    ['query string is ignored', taskReq('app.echo?x=1&y', '{"input":4}')],
    ['query string on discovery is ignored', { ...discoveryReq(), path: '/__runner/discovery?x=1' }],
    ['extra segments after discovery still hit discovery', { ...discoveryReq(), path: '/__runner/discovery/extra' }],
    ['dot segments are resolved (..)', taskReq('x/../app.echo', '{"input":5}')],
    ['dot segments are resolved (.)', taskReq('./app.echo', '{"input":6}')],
    ['percent-encoded dot segments are resolved (%2e%2e)', taskReq('x/%2e%2e/app.echo', '{"input":7}')],
    ['dot segments can leave the kind', { ...taskReq('x', '{"input":8}'), path: '/__runner/event/../task/app.echo' }],
    [
      'absolute-form request target',
      { ...taskReq('x', '{"input":9}'), path: 'http://127.0.0.1/__runner/task/app.echo' },
    ],
    [
      'protocol-relative request target (leading double slash)',
      { ...taskReq('x', '{"input":10}'), path: '//evil.example/__runner/task/app.echo' },
    ],
  ];

  for (const [label, spec] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, { label });
    });
  }
});

describe('basePath variants (taken from the reference resolveBasePath)', () => {
  const variants = [
    [
      '"api/" (no leading slash, trailing slash) becomes /api',
      'api/',
      [
        '/api/task/app.echo',
        '/api//task/app.echo',
        '/api',
        '/api/',
        '/apix/task/app.echo',
        '/__runner/task/app.echo',
        '/api/discovery',
      ],
    ],
    [
      '"/deep/nested/" keeps both segments',
      '/deep/nested/',
      ['/deep/nested/task/app.echo', '/deep/task/app.echo', '/deep/nested/event/app.ev.wrap', '/deep/nested'],
    ],
    [
      '"/__runner/" (trailing slash) behaves like the default',
      '/__runner/',
      ['/__runner/task/app.echo', '/__runner/', '/__runner//task/app.echo'],
    ],
  ];
  for (const [label, basePath, paths] of variants) {
    describe(`basePath ${label}`, () => {
      let pair;
      before(async () => {
        pair = await startPair(allHandlers(), { auth: AUTH, basePath });
      });
      after(async () => pair && pair.close());
      for (const path of paths) {
        it(`POST ${path} (same answer as the reference)`, async () => {
          await sameAnswer(pair, {
            method: 'POST',
            path,
            headers: [authHeader(), ['Content-Type', 'application/json']],
            body: '{"input":"x","payload":"y","returnPayload":true}',
          });
        });
      }
      it('GET discovery under the base path (same answer as the reference)', async () => {
        const base = basePath.startsWith('/') ? basePath : `/${basePath}`;
        await sameAnswer(pair, {
          method: 'GET',
          path: `${base.replace(/\/$/, '')}/discovery`,
          headers: [authHeader()],
        });
      });
    });
  }
});
