import formbody from '@fastify/formbody'
import multipart from '@fastify/multipart'
import rateLimit from '@fastify/rate-limit'
import type { Duplex } from 'node:stream'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { apiKeyOf } from './auth.ts'
import type { ServerContext } from './context.ts'
import { ApiError, errorEnvelope, type ErrorEnvelope } from './envelope.ts'
import { serverLog } from './log.ts'
import { scrubCredentials } from './store/scrub.ts'
import { registerDownloadRoute } from './routes/downloads.ts'
import { registerHealthRoutes } from './routes/health.ts'
import type { RouteLimits } from './routes/limits.ts'
import { MAX_IMAGES, registerOptimizeRoute } from './routes/optimize.ts'
import { registerRegisterRoute } from './routes/register.ts'
import { registerResultRoute } from './routes/result.ts'
import { registerUsersRoute } from './routes/users.ts'
import { sharedRateLimitStore } from './shared-rate-limit.ts'

const MINUTE = 60_000

/**
 * What Node refuses before a request exists (a header block over 16 KB, a body cut off, a malformed
 * request line) still gets the envelope, written straight to the socket, which is closed after it.
 */
function clientErrorAnswer(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const message =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'Bad request: the request line and headers are larger than 16 KB (a URL that long is no API call).'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'Bad request: the request was not received in time.'
        : `Bad request: the request could not be read (${error.code ?? error.message}); it may have been cut off.`
  const body = JSON.stringify(errorEnvelope(400, message))
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}

/** Fastify's and @fastify/multipart's errors, told in the API's words (all of them the client's fault). */
function clientErrorMessage(error: FastifyError, ctx: ServerContext, req: FastifyRequest): string | null {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `${req.headers['content-type'] ? `Unsupported Content-Type "${req.headers['content-type']}"` : 'No Content-Type'}: send multipart/form-data or application/x-www-form-urlencoded (JSON bodies are not accepted).`
    case 'FST_REQ_FILE_TOO_LARGE':
      return `A file is larger than the ${ctx.options.maxFileSize}-byte limit.`
    case 'FST_FILES_LIMIT':
      return `At most ${MAX_IMAGES} images per request.`
    case 'FST_PARTS_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return 'Too many form fields in one request.'
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'The form body is too large.'
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
    case 'FST_PROTO_VIOLATION':
    case 'FST_MP_PREMATURE_CLOSE':
      return `The request body could not be read: ${error.message}.`
    default:
      return error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500
        ? `Bad request: ${error.message}.`
        : null
  }
}

/** The fastify app: every answer, even a crash or a not-found, is the JSON envelope with HTTP 200. */
export async function buildApp(ctx: ServerContext): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    // Form-urlencoded bodies are small; uploads go through multipart and its own limits.
    bodyLimit: 1024 * 1024,
    // Long-polls last up to 300 s; stalled uploads must not hold a socket forever.
    requestTimeout: 330_000,
    connectionTimeout: 0,
    keepAliveTimeout: 5_000,
    forceCloseConnections: 'idle',
    return503OnClosing: false,
    // Links come from the Host header only behind a proxy the operator trusts (see publicBase()).
    trustProxy: ctx.options.trustProxy,
    // Node would answer a bare 400 to a request without Host: the onRequest hook gives the envelope.
    http: { requireHostHeader: false },
    clientErrorHandler: clientErrorAnswer,
    // Errors raised before routing (a malformed URL) keep the envelope too.
    frameworkErrors: (error, _req, reply) => {
      ctx.stats.requests['(malformed request)'] = (ctx.stats.requests['(malformed request)'] ?? 0) + 1
      ctx.stats.totalRequests++
      void (reply as unknown as FastifyReply).code(200).send(errorEnvelope(400, `Bad request: ${error.message}.`))
    },
  })

  // Counted first, so that even rate-limited and malformed requests show up in the stats.
  app.addHook('onRequest', async (req) => {
    const route = `${req.method} ${req.routeOptions.url ?? '(unmatched)'}`
    ctx.stats.requests[route] = (ctx.stats.requests[route] ?? 0) + 1
    ctx.stats.totalRequests++
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) {
      throw new ApiError(400, 'Bad request: the Host header is missing (HTTP/1.1 requires it).')
    }
  })

  // JSON (and anything else) is refused: only the two form encodings of the contract are parsed.
  app.removeAllContentTypeParsers()
  await app.register(formbody, { bodyLimit: 1024 * 1024 })
  await app.register(multipart, {
    limits: {
      fileSize: ctx.options.maxFileSize,
      files: MAX_IMAGES,
      fields: 40,
      parts: 50,
      fieldSize: 16 * 1024,
      fieldNameSize: 100,
      headerPairs: 100,
    },
  })

  // Per key (or per IP when there is no valid key) and per endpoint: each route config gets its own counter.
  // Headers as the hosted (Laravel) API sends them: X-RateLimit-Limit and -Remaining on every answer; with a
  // 429, Retry-After in seconds and X-RateLimit-Reset as a Unix time (fastify's default is seconds from now).
  // With replicas (PostgreSQL), the windows are shared: a key's limit holds across them.
  const hit = ctx.store.hitRateLimit?.bind(ctx.store)
  await app.register(rateLimit, {
    global: false,
    addHeadersOnExceeding: { 'x-ratelimit-reset': false },
    addHeaders: { 'x-ratelimit-reset': false },
    ...(hit ? { store: sharedRateLimitStore(hit) } : {}),
  })
  const keyGenerator = async (req: FastifyRequest): Promise<string> => {
    const key = apiKeyOf(req)
    const account = key ? await ctx.store.getAccount(key) : undefined
    return account ? `account:${account.id}` : `ip:${req.ip}`
  }
  const errorResponseBuilder = (_req: FastifyRequest, c: { max: number; ttl: number }): ApiError =>
    Object.assign(
      new ApiError(
        429,
        `Rate limit exceeded: ${c.max} requests per minute on this endpoint. Retry in ${Math.ceil(c.ttl / 1000)} s (see Retry-After).`,
      ),
      { headers: { 'x-ratelimit-reset': String(Math.ceil((Date.now() + c.ttl) / 1000)) } },
    )
  const limits: RouteLimits = {
    api: { rateLimit: { max: ctx.options.rateLimit, timeWindow: MINUTE, keyGenerator, errorResponseBuilder } },
    health: {
      rateLimit: { max: ctx.options.healthRateLimit, timeWindow: MINUTE, keyGenerator: (req) => `ip:${req.ip}`, errorResponseBuilder },
    },
  }

  app.setErrorHandler((error: FastifyError | ApiError, req, reply) => {
    let body: ErrorEnvelope
    if (error instanceof ApiError) {
      // Answers may quote what the client sent: never a URL's credentials.
      body = errorEnvelope(error.code, Array.isArray(error.errors) ? error.errors.map(scrubCredentials) : error.errors)
      if (error.headers) void reply.headers(error.headers)
    } else {
      const message = clientErrorMessage(error as FastifyError, ctx, req)
      if (message !== null) {
        body = errorEnvelope(400, scrubCredentials(message))
      } else {
        // Logged for the operator; the client gets no internals (and never its key back).
        serverLog(`${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}: ${error.stack ?? error.message}`)
        body = errorEnvelope(500, 'Internal server error: the request could not be completed. Try again later.')
      }
    }
    return reply.code(200).type('application/json; charset=utf-8').send(body)
  })
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(200)
      .send(errorEnvelope(404, `Unknown endpoint: ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}.`)),
  )

  registerHealthRoutes(app, ctx, limits)
  registerRegisterRoute(app, ctx, limits)
  registerUsersRoute(app, ctx, limits)
  registerOptimizeRoute(app, ctx, limits)
  registerResultRoute(app, ctx, limits)
  registerDownloadRoute(app, ctx)

  app.addHook('preClose', async () => {
    ctx.runner.stopLongPolls()
  })
  return app
}
