export { createApiApp, type ApiDeps } from './api-app.ts';
export { ApiServer, isLoopback } from './api-server.ts';
export { openApiDocument } from './openapi.ts';
