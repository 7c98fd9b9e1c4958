// The OpenAPI 3.1 description of the admin API, served at `/openapi.json`. Hand-written and kept
// honest by a test that compares its paths and methods with the router's routes, both ways.

/// The admin API's OpenAPI document.
public enum OpenAPIDocument {
    /// The document as JSON text.
    public static let json = #"""
        {
          "openapi": "3.1.0",
          "info": {
            "title": "Sluice admin API",
            "version": "1",
            "description": "Consumers (virtual keys), teams, limits and budgets of a Sluice gateway, the config each Envoy has accepted, and the usage records of every Envoy. Everything under /v1/admin needs Authorization: Bearer <admin token>; /v1/fleet (where Envoys deliver usage records) needs the fleet token. A key's plaintext is returned once, by create and rotate; only its SHA-256 is stored. Consumers and teams come from the config file (source: config) or the admin database (source: database); the database wins a name."
          },
          "servers": [{ "url": "http://127.0.0.1:18001" }],
          "security": [{ "adminToken": [] }],
          "paths": {
            "/healthz": {
              "get": {
                "summary": "Liveness", "operationId": "health", "security": [],
                "responses": { "200": { "description": "Alive", "content": { "application/json": { "schema": { "type": "object", "properties": { "status": { "const": "ok" } } } } } } }
              }
            },
            "/openapi.json": {
              "get": {
                "summary": "This document", "operationId": "openapi", "security": [],
                "responses": { "200": { "description": "The OpenAPI 3.1 document", "content": { "application/json": { "schema": { "type": "object" } } } } }
              }
            },
            "/metrics": {
              "get": {
                "summary": "Prometheus metrics of sluiced and of the fleet (usage records of every Envoy)", "operationId": "metrics", "security": [],
                "responses": { "200": { "description": "Prometheus text exposition format 0.0.4", "content": { "text/plain": { "schema": { "type": "string" } } } } }
              }
            },
            "/v1/admin/status": {
              "get": {
                "summary": "The config version each Envoy has ACKed, and its last NACK", "operationId": "getStatus",
                "responses": {
                  "200": { "description": "Status", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } } },
                  "401": { "$ref": "#/components/responses/Unauthorized" }
                }
              }
            },
            "/v1/admin/consumers": {
              "get": {
                "summary": "List consumers from the config file and the database, merged", "operationId": "listConsumers",
                "parameters": [{ "name": "source", "in": "query", "required": false, "schema": { "$ref": "#/components/schemas/Source" } }],
                "responses": {
                  "200": { "description": "Consumers", "content": { "application/json": { "schema": { "type": "object", "required": ["consumers"], "properties": { "consumers": { "type": "array", "items": { "$ref": "#/components/schemas/Consumer" } } } } } } },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" }
                }
              },
              "post": {
                "summary": "Create a consumer with a new key (returned once)", "operationId": "createConsumer",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewConsumer" } } } },
                "responses": {
                  "201": { "$ref": "#/components/responses/IssuedKey" },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/consumers/{name}": {
              "parameters": [{ "$ref": "#/components/parameters/Name" }],
              "get": {
                "summary": "One consumer (the database's, else the config file's)", "operationId": "getConsumer",
                "responses": {
                  "200": { "$ref": "#/components/responses/Consumer" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" }
                }
              },
              "patch": {
                "summary": "Change a database consumer: absent fields are kept, null clears one", "operationId": "updateConsumer",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ConsumerChanges" } } } },
                "responses": {
                  "200": { "$ref": "#/components/responses/Consumer" },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              },
              "delete": {
                "summary": "Delete a database consumer", "operationId": "deleteConsumer",
                "responses": {
                  "204": { "description": "Deleted" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/consumers/{name}/rotate": {
              "parameters": [{ "$ref": "#/components/parameters/Name" }],
              "post": {
                "summary": "Replace the consumer's key; the new key is returned once, the old one stops working", "operationId": "rotateKey",
                "responses": {
                  "200": { "$ref": "#/components/responses/IssuedKey" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/consumers/{name}/disable": {
              "parameters": [{ "$ref": "#/components/parameters/Name" }],
              "post": {
                "summary": "Disable the consumer's key (401 api_key_revoked at the gateway)", "operationId": "disableConsumer",
                "responses": {
                  "200": { "$ref": "#/components/responses/Consumer" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/consumers/{name}/enable": {
              "parameters": [{ "$ref": "#/components/parameters/Name" }],
              "post": {
                "summary": "Re-enable the consumer's key", "operationId": "enableConsumer",
                "responses": {
                  "200": { "$ref": "#/components/responses/Consumer" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/consumers/{name}/limits": {
              "parameters": [{ "$ref": "#/components/parameters/Name" }],
              "put": {
                "summary": "Replace the consumer's limits and budgets", "operationId": "setConsumerLimits",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Limits" } } } },
                "responses": {
                  "200": { "$ref": "#/components/responses/Consumer" },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/teams": {
              "get": {
                "summary": "List teams from the config file and the database, merged", "operationId": "listTeams",
                "parameters": [{ "name": "source", "in": "query", "required": false, "schema": { "$ref": "#/components/schemas/Source" } }],
                "responses": {
                  "200": { "description": "Teams", "content": { "application/json": { "schema": { "type": "object", "required": ["teams"], "properties": { "teams": { "type": "array", "items": { "$ref": "#/components/schemas/Team" } } } } } } },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" }
                }
              },
              "post": {
                "summary": "Create a team with its limits and budgets", "operationId": "createTeam",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/NewTeam" } } } },
                "responses": {
                  "201": { "$ref": "#/components/responses/Team" },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/teams/{name}": {
              "parameters": [{ "$ref": "#/components/parameters/Name" }],
              "get": {
                "summary": "One team (the database's, else the config file's)", "operationId": "getTeam",
                "responses": {
                  "200": { "$ref": "#/components/responses/Team" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" }
                }
              },
              "delete": {
                "summary": "Delete a database team (its consumers keep the team name)", "operationId": "deleteTeam",
                "responses": {
                  "204": { "description": "Deleted" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/teams/{name}/limits": {
              "parameters": [{ "$ref": "#/components/parameters/Name" }],
              "put": {
                "summary": "Replace the team's limits and budgets", "operationId": "setTeamLimits",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Limits" } } } },
                "responses": {
                  "200": { "$ref": "#/components/responses/Team" },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "404": { "$ref": "#/components/responses/NotFound" },
                  "409": { "$ref": "#/components/responses/Conflict" }
                }
              }
            },
            "/v1/admin/usage": {
              "get": {
                "summary": "Usage and cost of every Envoy over a time range, summed per group (any of key, team, model, backend, provider), paged",
                "operationId": "getUsage",
                "parameters": [
                  { "$ref": "#/components/parameters/From" }, { "$ref": "#/components/parameters/To" },
                  { "name": "group_by", "in": "query", "required": false, "description": "A comma-separated subset of key,team,model,backend,provider; groups are ordered by these values (byte order) in that order. Absent: one row of everything.", "schema": { "type": "string", "pattern": "^(key|team|model|backend|provider)(,(key|team|model|backend|provider))*$" } },
                  { "$ref": "#/components/parameters/Limit" }, { "$ref": "#/components/parameters/Cursor" }
                ],
                "responses": {
                  "200": { "description": "A page of groups and the totals of the whole range", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/UsageSummary" } } } },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" }
                }
              }
            },
            "/v1/admin/usage/records": {
              "get": {
                "summary": "The usage records of every Envoy, newest first, paged", "operationId": "listUsageRecords",
                "parameters": [
                  { "$ref": "#/components/parameters/From" }, { "$ref": "#/components/parameters/To" },
                  { "name": "key", "in": "query", "required": false, "schema": { "type": "string", "maxLength": 256 } },
                  { "name": "team", "in": "query", "required": false, "schema": { "type": "string", "maxLength": 256 } },
                  { "name": "model", "in": "query", "required": false, "schema": { "type": "string", "maxLength": 256 } },
                  { "name": "backend", "in": "query", "required": false, "schema": { "type": "string", "maxLength": 256 } },
                  { "$ref": "#/components/parameters/Limit" }, { "$ref": "#/components/parameters/Cursor" }
                ],
                "responses": {
                  "200": { "description": "A page of records", "content": { "application/json": { "schema": { "type": "object", "required": ["records", "next_cursor"], "properties": { "records": { "type": "array", "items": { "$ref": "#/components/schemas/StoredUsageRecord" } }, "next_cursor": { "type": ["string", "null"] } } } } } },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" }
                }
              }
            },
            "/v1/fleet/usage": {
              "post": {
                "summary": "Usage records from an Envoy's background worker: each valid record is stored once by id, each invalid one rejected on its own",
                "operationId": "postFleetUsage", "security": [{ "fleetToken": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/UsageBatch" } } } },
                "responses": {
                  "200": { "description": "What became of the batch", "content": { "application/json": { "schema": { "type": "object", "required": ["accepted", "duplicates", "rejected"], "properties": { "accepted": { "type": "integer", "description": "Records stored now" }, "duplicates": { "type": "integer", "description": "Records whose id was already stored; nothing changed" }, "rejected": { "type": "array", "items": { "type": "object", "required": ["index", "error"], "properties": { "index": { "type": "integer" }, "error": { "type": "string", "description": "The field at fault and its range, e.g. 'status: must be an integer between 100 and 599, got 600'" } } } }, "ignored_fields": { "type": "array", "items": { "type": "string" }, "description": "Member names this sluiced does not know, ignored (absent when none)" } } } } } },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "413": { "description": "The body is larger than 4 MiB", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                  "503": { "description": "The database failed; retry the batch (it is idempotent)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
              }
            },
            "/v1/fleet/leases": {
              "post": {
                "summary": "Quota leases: per scope, dimension and window, an Envoy reports what it spent since its last request, returns what it does not need and asks for more; the answer grants slices with their expiry and states the fleet's account",
                "operationId": "postFleetLeases", "security": [{ "fleetToken": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["envoy", "boot", "seq", "items"], "properties": {
                  "envoy": { "type": "string", "minLength": 1, "maxLength": 128, "description": "The Envoy's node id (printable ASCII)" },
                  "boot": { "type": "string", "minLength": 1, "maxLength": 128, "description": "Identifies the Envoy process: a restart with the same node id is a new lease holder" },
                  "seq": { "type": "integer", "minimum": 1, "maximum": 9007199254740992, "description": "Increases with each new request of this envoy and boot; a resent request keeps its seq, and its spent and returned are not applied twice" },
                  "items": { "type": "array", "minItems": 1, "maxItems": 1000, "items": { "type": "object", "required": ["scope", "name", "dimension", "window", "limit"], "properties": {
                    "scope": { "type": "string", "enum": ["key", "team", "model"] },
                    "name": { "type": "string", "minLength": 1, "maxLength": 256 },
                    "dimension": { "type": "string", "enum": ["requests_per_minute", "tokens_per_minute", "input_tokens_per_minute", "output_tokens_per_minute", "cost_micro_usd_per_day", "cost_micro_usd_per_month"] },
                    "window": { "type": "integer", "minimum": 0, "description": "UTC minutes, days or months since 1970 (by dimension); sluiced's current window, the one before (reports only) or, within 5 s of its start, the next" },
                    "limit": { "type": "integer", "minimum": 1, "description": "The scope's limit in this dimension as the Envoy's config states it (requests, tokens or micro-dollars). Only compared: sluiced grants against the limit of the config it serves, and rejects an item for a scope it does not limit" },
                    "spent": { "type": "integer", "minimum": 0, "maximum": 1000000000000000, "description": "Settled since the last request, in this window. Default 0" },
                    "returned": { "type": "integer", "minimum": 0, "maximum": 1000000000000000, "description": "Unused slice given back. Default 0" },
                    "want": { "type": "integer", "minimum": 0, "description": "More slice asked for, at most the dimension's largest limit. Default 0" },
                    "held": { "type": "integer", "minimum": 0, "description": "The free part of the slice the Envoy still holds in this window by its own count, after this item's return (0 when its lease lapsed). Read only after a sluiced restart, to take the Envoy's slice back from the stand-in holder. Default 0" } } } } } } } } },
                "responses": {
                  "200": { "description": "Grants for the applied items (by their index in the request) and the rejected ones", "content": { "application/json": { "schema": { "type": "object", "required": ["seq", "replay", "grants", "rejected"], "properties": {
                    "seq": { "type": "integer" },
                    "replay": { "type": "boolean", "description": "The seq was applied before: spent and returned were ignored now" },
                    "grants": { "type": "array", "items": { "type": "object", "required": ["index", "scope", "name", "dimension", "window", "granted", "held", "ttl_ms", "expires_at_ms", "limit", "consumed", "outstanding", "remaining", "window_end_ms"], "properties": {
                      "index": { "type": "integer" }, "scope": { "type": "string" }, "name": { "type": "string" }, "dimension": { "type": "string" }, "window": { "type": "integer" },
                      "granted": { "type": "integer", "description": "Added to the Envoy's slice now" },
                      "held": { "type": "integer", "description": "The Envoy's whole slice as sluiced counts it" },
                      "ttl_ms": { "type": "integer", "description": "The slice is the Envoy's for this long after sluiced read the request, unless renewed; the Envoy times it from when it sent the request and stops a margin earlier" },
                      "expires_at_ms": { "type": "integer" }, "limit": { "type": "integer", "description": "sluiced's limit (from the config it serves), the one granted against" },
                      "consumed": { "type": "integer", "description": "What the fleet reported spent in the window" },
                      "outstanding": { "type": "integer", "description": "Every Envoy's slices in the window" },
                      "remaining": { "type": "integer", "description": "limit - consumed - outstanding, at least 0: what sluiced can still grant" },
                      "window_end_ms": { "type": "integer" } } } },
                    "rejected": { "type": "array", "items": { "type": "object", "required": ["index", "error"], "properties": { "index": { "type": "integer" }, "error": { "type": "string", "description": "The field at fault and its range, e.g. 'want: must be an integer between 0 and 100000000, got -1', or the scope and dimension sluiced's config does not limit" } } } },
                    "ignored_fields": { "type": "array", "items": { "type": "string" } },
                    "limit_mismatches": { "type": "array", "description": "Applied items whose stated limit differs from sluiced's (absent when none)", "items": { "type": "object", "required": ["index", "reported", "limit"], "properties": { "index": { "type": "integer" }, "reported": { "type": "integer", "description": "The Envoy's" }, "limit": { "type": "integer", "description": "sluiced's, the one applied" } } } } } } } } },
                  "400": { "$ref": "#/components/responses/BadRequest" },
                  "401": { "$ref": "#/components/responses/Unauthorized" },
                  "413": { "description": "The body is larger than 4 MiB", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                  "503": { "description": "PostgreSQL only: the shared ledger's database failed, nothing was granted; resend the request as it is", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
                }
              }
            }
          },
          "components": {
            "securitySchemes": {
              "adminToken": { "type": "http", "scheme": "bearer", "description": "The admin token sluiced was given (a file or an environment variable)." },
              "fleetToken": { "type": "http", "scheme": "bearer", "description": "The fleet token Envoys present (--fleet-token-file, SLUICED_FLEET_TOKEN or .sluiced/fleet-token); it authorises /v1/fleet/ only." }
            },
            "parameters": {
              "From": { "name": "from", "in": "query", "required": false, "description": "Start of the range, inclusive: Unix milliseconds or an RFC 3339 time. Default: 0.", "schema": { "type": "string" } },
              "To": { "name": "to", "in": "query", "required": false, "description": "End of the range, exclusive: Unix milliseconds or an RFC 3339 time. Default: 2^53.", "schema": { "type": "string" } },
              "Limit": { "name": "limit", "in": "query", "required": false, "description": "Rows per page. Default 100.", "schema": { "type": "integer", "minimum": 1, "maximum": 1000 } },
              "Cursor": { "name": "cursor", "in": "query", "required": false, "description": "The next_cursor of the previous page, with the same other parameters.", "schema": { "type": "string" } },
              "Name": { "name": "name", "in": "path", "required": true, "schema": { "$ref": "#/components/schemas/Name" } }
            },
            "responses": {
              "Consumer": { "description": "The consumer", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Consumer" } } } },
              "IssuedKey": { "description": "The consumer and its key's plaintext, shown this once", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/IssuedKey" } } } },
              "Team": { "description": "The team", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Team" } } } },
              "BadRequest": { "description": "Invalid input; error.field names the field", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "Unauthorized": { "description": "Missing or wrong admin token", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "NotFound": { "description": "No such consumer or team", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "Conflict": { "description": "The name is taken (conflict), or is defined in the config file (defined_in_config)", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            },
            "schemas": {
              "Name": { "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9][A-Za-z0-9._:@-]*$" },
              "Source": { "type": "string", "enum": ["config", "database"] },
              "Models": { "type": "array", "maxItems": 1000, "items": { "type": "string", "minLength": 1, "description": "A model name, or a prefix ending in a single '*'" } },
              "Limits": {
                "type": "object", "additionalProperties": false,
                "description": "Absent fields are not limited.",
                "properties": {
                  "requests_per_minute": { "type": "integer", "minimum": 1, "maximum": 100000000 },
                  "tokens_per_minute": { "type": "integer", "minimum": 1, "maximum": 10000000000 },
                  "input_tokens_per_minute": { "type": "integer", "minimum": 1, "maximum": 10000000000 },
                  "output_tokens_per_minute": { "type": "integer", "minimum": 1, "maximum": 10000000000 },
                  "budget_usd_per_day": { "type": "number", "minimum": 0, "maximum": 1000000 },
                  "budget_usd_per_month": { "type": "number", "minimum": 0, "maximum": 1000000 }
                }
              },
              "NewConsumer": {
                "type": "object", "additionalProperties": false, "required": ["name"],
                "properties": {
                  "name": { "$ref": "#/components/schemas/Name" },
                  "team": { "$ref": "#/components/schemas/Name" },
                  "models": { "$ref": "#/components/schemas/Models" },
                  "expires_at": { "type": "integer", "minimum": 0, "maximum": 253402300799, "description": "Unix seconds" },
                  "disabled": { "type": "boolean", "default": false },
                  "limits": { "$ref": "#/components/schemas/Limits" }
                }
              },
              "ConsumerChanges": {
                "type": "object", "additionalProperties": false,
                "properties": {
                  "team": { "oneOf": [{ "$ref": "#/components/schemas/Name" }, { "type": "null" }] },
                  "models": { "oneOf": [{ "$ref": "#/components/schemas/Models" }, { "type": "null" }] },
                  "expires_at": { "type": ["integer", "null"], "minimum": 0, "maximum": 253402300799 },
                  "disabled": { "type": "boolean" },
                  "limits": { "oneOf": [{ "$ref": "#/components/schemas/Limits" }, { "type": "null" }] }
                }
              },
              "Consumer": {
                "type": "object", "required": ["name", "source", "key_sha256", "disabled", "limits"],
                "properties": {
                  "name": { "type": "string" },
                  "source": { "$ref": "#/components/schemas/Source" },
                  "overrides_config": { "type": "boolean", "description": "Present (true) when a database consumer replaces a config one of the same name" },
                  "key_sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
                  "team": { "type": "string" },
                  "models": { "$ref": "#/components/schemas/Models" },
                  "expires_at": { "type": "integer" },
                  "disabled": { "type": "boolean" },
                  "limits": { "$ref": "#/components/schemas/Limits" }
                }
              },
              "IssuedKey": {
                "type": "object", "required": ["consumer", "key"],
                "properties": {
                  "consumer": { "$ref": "#/components/schemas/Consumer" },
                  "key": { "type": "string", "pattern": "^sk-sluice-[A-Za-z0-9_-]{43}$" },
                  "note": { "type": "string" }
                }
              },
              "NewTeam": {
                "type": "object", "additionalProperties": false, "required": ["name"],
                "properties": { "name": { "$ref": "#/components/schemas/Name" }, "limits": { "$ref": "#/components/schemas/Limits" } }
              },
              "Team": {
                "type": "object", "required": ["name", "source", "limits"],
                "properties": {
                  "name": { "type": "string" },
                  "source": { "$ref": "#/components/schemas/Source" },
                  "overrides_config": { "type": "boolean" },
                  "limits": { "$ref": "#/components/schemas/Limits" }
                }
              },
              "Status": {
                "type": "object", "required": ["admin_store_version", "nodes"],
                "properties": {
                  "admin_store_version": { "type": "integer", "description": "Every write to the admin database adds one" },
                  "served_version": { "type": "string", "description": "The version of the snapshot served now" },
                  "last_refused_change": { "type": "string", "description": "Why the last config edit or database change was refused (the previous config is still served); absent once a change is served again" },
                  "nodes": {
                    "type": "array",
                    "items": {
                      "type": "object", "required": ["node_id", "connected", "in_sync", "resources"],
                      "properties": {
                        "node_id": { "type": "string" },
                        "cluster": { "type": "string" },
                        "connected": { "type": "boolean" },
                        "in_sync": { "type": "boolean", "description": "It ACKed, for every type, the version it was last sent" },
                        "last_seen": { "type": "string", "format": "date-time" },
                        "resources": {
                          "type": "array",
                          "items": {
                            "type": "object", "required": ["type_url"],
                            "properties": {
                              "type_url": { "type": "string" },
                              "acked_version": { "type": "string" },
                              "sent_version": { "type": "string" }
                            }
                          }
                        },
                        "last_nack": {
                          "type": "object", "required": ["type_url", "rejected_version", "kept_version", "code", "message", "at", "resolved"],
                          "properties": {
                            "type_url": { "type": "string" },
                            "rejected_version": { "type": "string" },
                            "kept_version": { "type": "string", "description": "The version Envoy kept running" },
                            "code": { "type": "integer", "description": "error_detail.code (gRPC status)" },
                            "message": { "type": "string", "description": "Envoy's error_detail.message" },
                            "at": { "type": "string", "format": "date-time" },
                            "resolved": { "type": "boolean", "description": "A later version of that type was ACKed since" }
                          }
                        }
                      }
                    }
                  }
                }
              },
              "UsageTotals": {
                "type": "object", "required": ["requests", "errors", "input_tokens", "cached_input_tokens", "output_tokens", "search_units", "images", "speech_characters", "audio_seconds", "cost_usd", "cost_micro_usd"],
                "description": "Sums; a group row also carries its group_by values under their names (key, team, model, backend, provider). Token sums count token-metered records only; media records count in images, speech_characters or audio_seconds.",
                "properties": {
                  "requests": { "type": "integer" }, "errors": { "type": "integer", "description": "Requests answered with status 400 or more" },
                  "input_tokens": { "type": "integer" }, "cached_input_tokens": { "type": "integer" }, "output_tokens": { "type": "integer" },
                  "search_units": { "type": "integer", "description": "Search units rerank backends billed (Cohere)" },
                  "images": { "type": "integer", "description": "Images generated" },
                  "speech_characters": { "type": "integer", "description": "Characters of text turned into speech" },
                  "audio_seconds": { "type": "integer", "description": "Seconds of audio transcribed or translated (each request rounded up)" },
                  "cost_usd": { "type": "string", "description": "Dollars as a decimal string, exact (at most six decimals, no trailing zeros)" },
                  "cost_micro_usd": { "type": "integer" }
                },
                "additionalProperties": { "type": "string" }
              },
              "UsageSummary": {
                "type": "object", "required": ["from", "to", "group_by", "groups", "totals", "next_cursor"],
                "properties": {
                  "from": { "type": "integer" }, "to": { "type": "integer" },
                  "group_by": { "type": "array", "items": { "type": "string", "enum": ["key", "team", "model", "backend", "provider"] } },
                  "groups": { "type": "array", "items": { "$ref": "#/components/schemas/UsageTotals" } },
                  "totals": { "$ref": "#/components/schemas/UsageTotals" },
                  "next_cursor": { "type": ["string", "null"] }
                }
              },
              "UsageRecord": {
                "type": "object", "additionalProperties": false,
                "required": ["id", "time_ms", "key", "team", "model", "backend", "provider", "status", "input_tokens", "cached_input_tokens", "output_tokens", "cost_micro_usd", "duration_ms", "stream"],
                "properties": {
                  "id": { "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[ -~]+$", "description": "The request's x-request-id" },
                  "time_ms": { "type": "integer", "minimum": 0, "maximum": 9007199254740992 },
                  "key": { "type": "string", "maxLength": 256 }, "team": { "type": "string", "maxLength": 256 },
                  "model": { "type": "string", "maxLength": 256 }, "backend": { "type": "string", "maxLength": 256 },
                  "provider": { "type": "string", "maxLength": 256 },
                  "status": { "type": "integer", "minimum": 100, "maximum": 599 },
                  "unit": { "type": "string", "enum": ["tokens", "characters", "seconds", "images"], "default": "tokens", "description": "What input_tokens and output_tokens count: tokens, or a media model's unit (speech characters and audio seconds in input_tokens, images in output_tokens)" },
                  "input_tokens": { "type": "integer", "minimum": 0, "maximum": 1000000000 },
                  "cached_input_tokens": { "type": "integer", "minimum": 0, "maximum": 1000000000 },
                  "output_tokens": { "type": "integer", "minimum": 0, "maximum": 1000000000 },
                  "search_units": { "type": "integer", "minimum": 0, "maximum": 1000000000, "default": 0, "description": "Search units a rerank backend billed" },
                  "cost_micro_usd": { "type": "integer", "minimum": 0, "maximum": 1000000000000000 },
                  "duration_ms": { "type": "integer", "minimum": 0, "maximum": 1000000000 },
                  "ttft_ms": { "type": ["integer", "null"], "minimum": 0, "maximum": 1000000000 },
                  "stream": { "type": "boolean" }
                }
              },
              "UsageBatch": {
                "type": "object", "additionalProperties": false, "required": ["envoy", "records"],
                "properties": {
                  "envoy": { "type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[ -~]+$", "description": "The sending Envoy's node id" },
                  "records": { "type": "array", "minItems": 1, "maxItems": 1000, "items": { "$ref": "#/components/schemas/UsageRecord" } }
                }
              },
              "StoredUsageRecord": {
                "type": "object", "description": "A record as sent (see UsageRecord), with the Envoy that sent it, when sluiced stored it, and its cost as a decimal string.",
                "required": ["id", "envoy", "received_at_ms", "time_ms", "key", "team", "model", "backend", "provider", "status", "unit", "input_tokens", "cached_input_tokens", "output_tokens", "search_units", "cost_micro_usd", "cost_usd", "duration_ms", "ttft_ms", "stream"],
                "properties": {
                  "id": { "type": "string" }, "envoy": { "type": "string" }, "received_at_ms": { "type": "integer" },
                  "time_ms": { "type": "integer" }, "key": { "type": "string" }, "team": { "type": "string" },
                  "model": { "type": "string" }, "backend": { "type": "string" }, "provider": { "type": "string" },
                  "status": { "type": "integer" }, "unit": { "type": "string", "enum": ["tokens", "characters", "seconds", "images"] },
                  "input_tokens": { "type": "integer" }, "cached_input_tokens": { "type": "integer" },
                  "output_tokens": { "type": "integer" }, "search_units": { "type": "integer" },
                  "cost_micro_usd": { "type": "integer" }, "cost_usd": { "type": "string" },
                  "duration_ms": { "type": "integer" }, "ttft_ms": { "type": ["integer", "null"] }, "stream": { "type": "boolean" }
                }
              },
              "Error": {
                "type": "object", "required": ["error"],
                "properties": {
                  "error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {
                      "code": { "type": "string", "enum": ["invalid_request", "unauthorized", "not_found", "conflict", "defined_in_config", "store_failure", "method_not_allowed", "body_too_large", "internal"] },
                      "message": { "type": "string" },
                      "field": { "type": "string", "description": "The request field at fault, as a JSON path" }
                    }
                  }
                }
              }
            }
          }
        }
        """#
}
