// The browser test's page: calls ContactService through the gateway with
// connect-web's gRPC-web transport, exactly as a front end would, and writes
// what happened as JSON into <pre id="result">. run.mjs opens it in headless
// Chromium and checks that JSON.
//
// Query parameters (set by run.mjs):
//   gateway  the gateway's base URL, e.g. http://127.0.0.1:40123 (another
//            origin than this page's, so every call is a CORS request)
//   token    bearer token sent as `authorization: Bearer <token>`
//   mode     `binary` (application/grpc-web+proto) or `text`
//            (application/grpc-web-text, see grpc-web-text.ts)
//
// Steps, each recorded under `steps` with `ok`, `problems` and what it saw:
//   create   CreateContact with a unique email
//   get      GetContact of that id returns the same fields
//   invalid  CreateContact with a malformed email fails with
//            INVALID_ARGUMENT and a google.rpc.BadRequest naming contact.email
//   watch    WatchChanges (server streaming) replays up to the created
//            contact, then delivers the event of a contact created while the
//            stream is open
// When everything has run, document.body.dataset.done is "true".

import { anyUnpack, timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { BadRequestSchema } from "../gen/google/rpc/error_details_pb";
import { ChangeKind } from "../gen/rapport/common/v1/changes_pb";
import {
  ContactSchema,
  ContactService,
  LeadSource,
  LifecycleStage,
  type Contact,
} from "../gen/rapport/contacts/v1/contacts_pb";
import { grpcWebTextFetch } from "./grpc-web-text";

type Mode = "binary" | "text";

/** The field the invalid create must be rejected for. */
const INVALID_FIELD = "contact.email";
/** How long the watch step waits for its events before giving up. */
const WATCH_TIMEOUT_MS = 30_000;
const CONTACT_TYPE = "rapport.contacts.v1.Contact";

interface ErrorReport {
  code: string;
  message: string;
}

interface StepResult {
  ok: boolean;
  problems: string[];
  observed: Record<string, unknown>;
  error?: ErrorReport;
}

interface Result {
  mode: Mode | string;
  gateway: string;
  origin: string;
  ok: boolean;
  steps: Record<string, StepResult>;
  /** `<status> <content-type>` of every gRPC-web response, in call order. */
  responses: string[];
  error?: string;
}

const params = new URLSearchParams(location.search);
const result: Result = {
  mode: params.get("mode") ?? "binary",
  gateway: params.get("gateway") ?? "",
  origin: location.origin,
  ok: false,
  steps: {},
  responses: [],
};

/** Records a step; a thrown error fails it with the error's code and message. */
async function step(name: string, run: (check: Check) => Promise<void>): Promise<void> {
  const check = new Check();
  const stepResult: StepResult = { ok: false, problems: check.problems, observed: check.observed };
  result.steps[name] = stepResult;
  try {
    await run(check);
  } catch (err) {
    stepResult.error = errorReport(err);
    check.problems.push(`failed: ${stepResult.error.code}: ${stepResult.error.message}`);
  }
  stepResult.ok = check.problems.length === 0;
  render();
}

/** Collects observations and the differences from what was expected. */
class Check {
  readonly problems: string[] = [];
  readonly observed: Record<string, unknown> = {};

  see(key: string, value: unknown): void {
    this.observed[key] = value;
  }

  equal(what: string, actual: unknown, expected: unknown): void {
    if (JSON.stringify(actual, jsonSafe) !== JSON.stringify(expected, jsonSafe)) {
      this.problems.push(
        `${what}: got ${JSON.stringify(actual, jsonSafe)}, want ${JSON.stringify(expected, jsonSafe)}`,
      );
    }
  }

  that(what: string, condition: boolean): void {
    if (!condition) this.problems.push(what);
  }
}

function errorReport(err: unknown): ErrorReport {
  const connectError = ConnectError.from(err);
  return { code: Code[connectError.code] ?? String(connectError.code), message: connectError.rawMessage };
}

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

function iso(timestamp: Timestamp | undefined): string | undefined {
  return timestamp === undefined ? undefined : timestampDate(timestamp).toISOString();
}

function randomSuffix(): string {
  return crypto.randomUUID().slice(0, 8);
}

function render(): void {
  const pre = document.getElementById("result");
  if (pre) pre.textContent = JSON.stringify(result, jsonSafe, 2);
  const list = document.getElementById("steps");
  if (list) {
    list.replaceChildren(
      ...Object.entries(result.steps).map(([name, stepResult]) => {
        const item = document.createElement("li");
        item.textContent = `${stepResult.ok ? "ok" : "FAILED"}  ${name}  ${stepResult.problems.join("; ")}`;
        return item;
      }),
    );
  }
}

function finish(): void {
  result.ok = result.error === undefined && Object.values(result.steps).every((s) => s.ok);
  render();
  document.body.dataset.done = "true";
}

function makeClient(gateway: string, token: string, mode: Mode): Client<typeof ContactService> {
  // Remember what each response claimed to be, so the runner can tell the
  // two wire formats really were used.
  const recordingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    result.responses.push(`${response.status} ${response.headers.get("content-type") ?? "(no content-type)"}`);
    return response;
  };
  const authorization: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const transport = createGrpcWebTransport({
    baseUrl: gateway,
    useBinaryFormat: true,
    fetch: mode === "text" ? grpcWebTextFetch(recordingFetch) : recordingFetch,
    interceptors: [authorization],
  });
  return createClient(ContactService, transport);
}

function expectedContact(mode: string) {
  const suffix = randomSuffix();
  return {
    givenName: "Ada",
    familyName: `Browser ${mode}`,
    email: `browser-${mode}-${suffix}@example.com`,
    phone: "+44 20 7946 0958",
    jobTitle: "Analyst",
    lifecycleStage: LifecycleStage.MARKETING_QUALIFIED,
    leadSource: LeadSource.TRADE_SHOW,
    leadSourceDetail: "Browser Expo",
    tags: ["browser-test", mode],
    emailOptIn: true,
  };
}

function compareContact(check: Check, what: string, actual: Contact, expected: ReturnType<typeof expectedContact>) {
  check.equal(`${what} given_name`, actual.givenName, expected.givenName);
  check.equal(`${what} family_name`, actual.familyName, expected.familyName);
  check.equal(`${what} email`, actual.email, expected.email);
  check.equal(`${what} phone`, actual.phone, expected.phone);
  check.equal(`${what} job_title`, actual.jobTitle, expected.jobTitle);
  check.equal(
    `${what} lifecycle_stage`,
    LifecycleStage[actual.lifecycleStage],
    LifecycleStage[expected.lifecycleStage],
  );
  check.equal(`${what} lead_source`, LeadSource[actual.leadSource], LeadSource[expected.leadSource]);
  check.equal(`${what} lead_source_detail`, actual.leadSourceDetail, expected.leadSourceDetail);
  check.equal(`${what} tags`, [...actual.tags].sort(), [...expected.tags].sort());
  check.equal(`${what} email_opt_in`, actual.emailOptIn, expected.emailOptIn);
  check.that(`${what} has no id`, actual.id !== "");
  check.that(`${what} has no create_time`, actual.createTime !== undefined);
  check.that(`${what} has no email_opt_in_time although email_opt_in is set`, actual.emailOptInTime !== undefined);
  check.that(`${what} has no etag`, actual.etag !== "");
  check.that(`${what} is deleted`, actual.deleteTime === undefined);
}

async function main(): Promise<void> {
  const token = params.get("token") ?? "";
  const mode = result.mode;
  if (result.gateway === "" || token === "" || (mode !== "binary" && mode !== "text")) {
    result.error = "the page needs ?gateway=<url>&token=<bearer token>&mode=binary|text";
    return;
  }
  const client = makeClient(result.gateway, token, mode);

  // 1. Create a contact.
  const wanted = expectedContact(mode);
  let created: Contact | undefined;
  await step("create", async (check) => {
    created = await client.createContact({ contact: wanted, requestId: crypto.randomUUID() });
    check.see("id", created.id);
    check.see("email", created.email);
    check.see("create_time", iso(created.createTime));
    compareContact(check, "created contact", created, wanted);
  });

  // 2. Read it back.
  await step("get", async (check) => {
    if (created === undefined || created.id === "") {
      check.that("skipped: create did not return a contact", false);
      return;
    }
    const read = await client.getContact({ id: created.id });
    check.see("id", read.id);
    check.see("email", read.email);
    check.see("etag", read.etag);
    check.equal("read contact id", read.id, created.id);
    compareContact(check, "read contact", read, wanted);
    check.equal("read contact create_time", iso(read.createTime), iso(created.createTime));
    check.equal("read contact etag", read.etag, created.etag);
  });

  // 3. An invalid create: the error's details name the field.
  await step("invalid", async (check) => {
    try {
      const unexpected = await client.createContact({
        contact: { givenName: "Mal", email: "not-an-email" },
        requestId: crypto.randomUUID(),
      });
      check.that(`an invalid email was accepted (created ${unexpected.id})`, false);
      return;
    } catch (err) {
      const connectError = ConnectError.from(err);
      const violations = connectError
        .findDetails(BadRequestSchema)
        .flatMap((badRequest) => badRequest.fieldViolations)
        .map((violation) => ({ field: violation.field, description: violation.description }));
      check.see("code", Code[connectError.code]);
      check.see("message", connectError.rawMessage);
      check.see("field_violations", violations);
      check.that(
        `error code: got ${Code[connectError.code]} (${connectError.rawMessage}), want InvalidArgument`,
        connectError.code === Code.InvalidArgument,
      );
      check.that(
        `no BadRequest field violation for ${INVALID_FIELD} in the error details ` +
          `(details: ${connectError.details.length}, violations: ${JSON.stringify(violations)})`,
        violations.some((violation) => violation.field === INVALID_FIELD),
      );
      const shown = document.getElementById("violation");
      if (shown) shown.textContent = violations.map((violation) => violation.field).join(", ");
    }
  });

  // 4. Server streaming: WatchChanges from the start of the (fresh) log,
  //    wait until the replay reaches the contact of step 1 (so the stream is
  //    open), then create another contact and wait for its event.
  await step("watch", async (check) => {
    if (created === undefined || created.id === "") {
      check.that("skipped: create did not return a contact", false);
      return;
    }
    const anchorId = created.id;
    const abort = new AbortController();
    const timer = setTimeout(
      () => abort.abort(new Error(`no matching event within ${WATCH_TIMEOUT_MS} ms`)),
      WATCH_TIMEOUT_MS,
    );
    try {
      const stream = client.watchChanges(
        { afterSequence: 0n, resourceTypes: [CONTACT_TYPE] },
        { signal: abort.signal },
      );
      const events = stream[Symbol.asyncIterator]();
      let received = 0;
      let heartbeats = 0;
      const nextChange = async (wantedId: string) => {
        for (;;) {
          const next = await events.next();
          if (next.done) throw new Error(`the stream ended before the event of ${wantedId}`);
          received++;
          if (next.value.event.case === "heartbeat") {
            heartbeats++;
            continue;
          }
          if (next.value.event.case !== "change") continue;
          const change = next.value.event.value;
          if (change.resourceId === wantedId) return change;
        }
      };

      const anchor = await nextChange(anchorId);
      check.see("anchor_sequence", anchor.sequence);

      const second = expectedContact(`${mode}-watch`);
      const secondContact = await client.createContact({ contact: second, requestId: crypto.randomUUID() });
      check.see("created_while_watching", secondContact.id);

      const change = await nextChange(secondContact.id);
      await events.return?.();
      check.see("event_sequence", change.sequence);
      check.see("event_kind", ChangeKind[change.kind]);
      check.see("event_actor", change.actor);
      check.see("messages_received", received);
      check.see("heartbeats", heartbeats);
      check.equal("event kind", ChangeKind[change.kind], ChangeKind[ChangeKind.CREATED]);
      check.equal("event resource_type", change.resourceType, CONTACT_TYPE);
      check.that(
        `event sequence ${change.sequence} is not after the replayed ${anchor.sequence}`,
        change.sequence > anchor.sequence,
      );
      check.that("event has no event_id", change.eventId !== "");
      check.that("event has no change_time", change.changeTime !== undefined);
      const resource = change.resource === undefined ? undefined : anyUnpack(change.resource, ContactSchema);
      check.that(`event resource is not a ${CONTACT_TYPE}`, resource !== undefined);
      if (resource !== undefined) compareContact(check, "event resource", resource, second);
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  });
}

window.addEventListener("error", (event) => {
  result.error = `uncaught error: ${event.message}`;
  finish();
});
window.addEventListener("unhandledrejection", (event) => {
  result.error = `unhandled rejection: ${String(event.reason)}`;
  finish();
});

main()
  .catch((err: unknown) => {
    result.error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  })
  .finally(finish);
