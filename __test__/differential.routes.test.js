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
    ['task id with dots', taskReq('a.b.c', '{}'), '200'],
    ['task id with %2F-encoded slash', taskReq('a%2Fb', '{}'), '200'],
    ['task id with lowercase %2f', taskReq('a%2fb', '{}'), '200'],
    ['task id spread over path segments is joined with "/"', taskReq('a/b', '{}'), '200'],
    ['double slash inside the id is collapsed', taskReq('a//b', '{}'), '200'],
    ['double slash before the id is ignored', taskReq('/app.echo', '{"input":1}'), '200'],
    [
      'double slash after the base path is ignored',
      { ...taskReq('app.echo', '{"input":2}'), path: '/__runner//task/app.echo' },
      '200',
    ],
    ['trailing slash after the id is ignored', taskReq('app.echo/', '{"input":3}'), '200'],
    ['percent-encoded UTF-8 id', taskReq('%C3%A9t%C3%A9', '{}'), '200'],
    ['percent-encoded space in the id', taskReq('with%20space', '{}'), '200'],
    ['double-encoded percent is decoded once', taskReq('%2541', '{}'), '200'],
    ['"+" is not decoded to a space', taskReq('a+b', '{}'), '200'],
    ['percent-encoded dots', taskReq('a%2Eb%2Ec', '{}'), '200'],
    ['empty id -> 404 Not Found', taskReq('', '{}'), '404 NOT_FOUND'],
    ['no id segment -> 404 Not Found', { ...taskReq('x', '{}'), path: '/__runner/task' }, '404 NOT_FOUND'],
    ['bad percent-encoding %zz -> 404', taskReq('app%zzecho', '{}'), '404 NOT_FOUND'],
    ['truncated percent-encoding -> 404', taskReq('app.echo%2', '{}'), '404 NOT_FOUND'],
    ['percent-encoded invalid UTF-8 (%FF) -> 404', taskReq('%FF', '{}'), '404 NOT_FOUND'],
    ['percent-encoded overlong UTF-8 (%C0%AF) -> 404', taskReq('%C0%AF', '{}'), '404 NOT_FOUND'],
    ['unknown task id -> 404 Task {id} not found', taskReq('nope.missing', '{}'), '404 NOT_FOUND'],
    ['unknown task id is reported decoded', taskReq('no%2Fpe%20x', '{}'), '404 NOT_FOUND'],
    ['task named like a route keyword', taskReq('discovery', '{}'), '404 NOT_FOUND'],
    ['unknown event id -> 404 Event {id} not found', eventReq('nope.event', '{"payload":1}'), '404 NOT_FOUND'],
    ['event id with dots', eventReq('app.ev.wrap', '{"payload":1,"returnPayload":true}'), '200'],
    ['empty event id -> 404', eventReq('', '{}'), '404 NOT_FOUND'],
    ['unknown kind -> 404', { ...taskReq('x', '{}'), path: '/__runner/tasks/app.echo' }, '404 NOT_FOUND'],
    ['kind is case-sensitive -> 404', { ...taskReq('x', '{}'), path: '/__runner/TASK/app.echo' }, '404 NOT_FOUND'],
    ['base path alone -> 404', { ...taskReq('x', '{}'), path: '/__runner' }, '404 NOT_FOUND'],
    ['base path with trailing slash -> 404', { ...taskReq('x', '{}'), path: '/__runner/' }, '404 NOT_FOUND'],
    [
      'path outside the base path -> 404 without request id',
      { ...taskReq('x', '{}'), path: '/other/task/app.echo' },
      '404 NOT_FOUND',
    ],
    [
      'path that only starts like the base path -> 404',
      { ...taskReq('x', '{}'), path: '/__runnerx/task/app.echo' },
      '404 NOT_FOUND',
    ],
    ['root path -> 404', { ...taskReq('x', '{}'), path: '/' }, '404 NOT_FOUND'],
    [
      'GET on a path outside the base path -> 404',
      { method: 'GET', path: '/favicon.ico', headers: [] },
      '404 NOT_FOUND',
    ],
    ['query string is ignored', taskReq('app.echo?x=1&y', '{"input":4}'), '200'],
    ['query string on discovery is ignored', { ...discoveryReq(), path: '/__runner/discovery?x=1' }, '200'],
    [
      'extra segments after discovery still hit discovery',
      { ...discoveryReq(), path: '/__runner/discovery/extra' },
      '200',
    ],
    ['dot segments are resolved (..)', taskReq('x/../app.echo', '{"input":5}'), '200'],
    ['dot segments are resolved (.)', taskReq('./app.echo', '{"input":6}'), '200'],
    ['percent-encoded dot segments are resolved (%2e%2e)', taskReq('x/%2e%2e/app.echo', '{"input":7}'), '200'],
    [
      'dot segments can leave the kind',
      { ...taskReq('x', '{"input":8}'), path: '/__runner/event/../task/app.echo' },
      '200',
    ],
    [
      'absolute-form request target',
      { ...taskReq('x', '{"input":9}'), path: 'http://127.0.0.1/__runner/task/app.echo' },
      '200',
    ],
    [
      'protocol-relative request target (leading double slash)',
      { ...taskReq('x', '{"input":10}'), path: '//evil.example/__runner/task/app.echo' },
      '200',
    ],
  ];

  for (const [label, spec, expected] of cases) {
    it(`${label} (same answer as the reference)`, async () => {
      await sameAnswer(pair, spec, expected, { label });
    });
  }
});

describe('basePath variants (taken from the reference resolveBasePath)', () => {
  const variants = [
    [
      '"api/" (no leading slash, trailing slash) becomes /api',
      'api/',
      [
        ['/api/task/app.echo', '200'],
        ['/api//task/app.echo', '200'],
        ['/api', '404 NOT_FOUND'],
        ['/api/', '404 NOT_FOUND'],
        ['/apix/task/app.echo', '404 NOT_FOUND'],
        ['/__runner/task/app.echo', '404 NOT_FOUND'],
        ['/api/discovery', '405 METHOD_NOT_ALLOWED'],
      ],
    ],
    [
      '"/deep/nested/" keeps both segments',
      '/deep/nested/',
      [
        ['/deep/nested/task/app.echo', '200'],
        ['/deep/task/app.echo', '404 NOT_FOUND'],
        ['/deep/nested/event/app.ev.wrap', '200'],
        ['/deep/nested', '404 NOT_FOUND'],
      ],
    ],
    [
      '"/__runner/" (trailing slash) behaves like the default',
      '/__runner/',
      [
        ['/__runner/task/app.echo', '200'],
        ['/__runner/', '404 NOT_FOUND'],
        ['/__runner//task/app.echo', '200'],
      ],
    ],
  ];
  for (const [label, basePath, paths] of variants) {
    describe(`basePath ${label}`, () => {
      let pair;
      before(async () => {
        pair = await startPair(allHandlers(), { auth: AUTH, basePath });
      });
      after(async () => pair && pair.close());
      for (const [path, expected] of paths) {
        it(`POST ${path} (same answer as the reference)`, async () => {
          await sameAnswer(
            pair,
            {
              method: 'POST',
              path,
              headers: [authHeader(), ['Content-Type', 'application/json']],
              body: '{"input":"x","payload":"y","returnPayload":true}',
            },
            expected,
          );
        });
      }
      it('GET discovery under the base path (same answer as the reference)', async () => {
        const base = basePath.startsWith('/') ? basePath : `/${basePath}`;
        await sameAnswer(
          pair,
          { method: 'GET', path: `${base.replace(/\/$/, '')}/discovery`, headers: [authHeader()] },
          '200',
        );
      });
    });
  }
});
