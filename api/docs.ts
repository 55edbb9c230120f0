import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Router from '@koa/router';
import { ApiError } from './errors.ts';
import type { PlainRoute } from './openapi.ts';

// Interactive documentation: Swagger UI, served from node_modules (swagger-ui-dist), reading
// /api/v1/openapi.json. Nothing is fetched from anywhere else, which the page's CSP enforces.

const SWAGGER_UI = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** Logging in through the login operation authorizes the page with the token it returns. */
const INITIALIZER = `"use strict";
const LOGIN_PATH = '/api/v1/authentication/login';
window.ui = SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  tryItOutEnabled: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  filter: true,
  validatorUrl: null,
  responseInterceptor(response) {
    const body = response.body ?? response.obj;
    if (response.status === 200 && new URL(response.url, location.href).pathname === LOGIN_PATH &&
        body !== null && typeof body === 'object' && typeof body.token === 'string') {
      window.ui.preauthorizeApiKey('bearerAuth', body.token);
    }
    return response;
  },
});
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Strata API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/strata-docs.js"></script>
</body>
</html>
`;

const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "script-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSETS: Readonly<Record<string, { type: string; read: () => Promise<Buffer | string> }>> = {
  'swagger-ui.css': { type: 'text/css', read: () => readFile(join(SWAGGER_UI, 'swagger-ui.css')) },
  'swagger-ui-bundle.js': { type: 'text/javascript', read: () => readFile(join(SWAGGER_UI, 'swagger-ui-bundle.js')) },
  'favicon-32x32.png': { type: 'image/png', read: () => readFile(join(SWAGGER_UI, 'favicon-32x32.png')) },
  'favicon-16x16.png': { type: 'image/png', read: () => readFile(join(SWAGGER_UI, 'favicon-16x16.png')) },
  'strata-docs.js': { type: 'text/javascript', read: async () => INITIALIZER },
};

export const DOCS_ROUTES: readonly PlainRoute[] = [
  {
    method: 'GET',
    path: '/docs',
    summary: 'Read the API documentation',
    description: 'This document, rendered by Swagger UI: log in through the login operation, then try calls.',
    responses: { 200: { description: 'The documentation page', content: { 'text/html': { type: 'string' } } } },
  },
  {
    method: 'GET',
    path: '/docs/{asset}',
    summary: 'Get documentation assets',
    description: 'The scripts, styles and icons of the documentation page.',
    parameters: [
      { name: 'asset', in: 'path', description: 'File name', schema: { type: 'string', enum: Object.keys(ASSETS) } },
    ],
    responses: {
      200: {
        description: 'The file',
        content: {
          'text/css': { type: 'string' },
          'text/javascript': { type: 'string' },
          'image/png': { type: 'string', contentMediaType: 'image/png' },
        },
      },
    },
    errors: ['NOT_FOUND'],
  },
];

export const docsRouter = (): Router => {
  const cache = new Map<string, Buffer | string>();
  const router = new Router();
  router.get('/docs', (ctx) => {
    ctx.set('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = PAGE;
  });
  router.get('/docs/:asset', async (ctx) => {
    const name = ctx.params.asset ?? '';
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (asset === undefined) throw new ApiError('NOT_FOUND', `No documentation asset '${name}'`);
    let content = cache.get(name);
    if (content === undefined) {
      content = await asset.read();
      cache.set(name, content);
    }
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.type = asset.type.startsWith('text/') ? `${asset.type}; charset=utf-8` : asset.type;
    ctx.body = content;
  });
  return router;
};
