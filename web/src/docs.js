// Starts Swagger UI on this server's OpenAPI document. Served as a file: the page's CSP allows
// no inline script. "Authorize" takes an API token (bearer); requests stay on this origin.
globalThis.ui = globalThis.SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  validatorUrl: null,
  tryItOutEnabled: false,
});
